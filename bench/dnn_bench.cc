// DNN kernel figures for each path this CPU runs (worker/dnn_kernels.h):
//   Gemm/<isa>/<layer>/<pass>/M<m>_N<n>_K<k>/t<threads>
//       the default model's GEMMs at batch 512: fwd = act * W, dW = act^T * dz,
//       dX = dz * W^T (layer0's dX covers only the 416 embedding columns, as
//       the model computes it); counter GFLOP/s.
//   BiasRelu/<isa>, ReluBackward/<isa>, and .../eigen_expr: the elementwise
//       passes at 512 x 1024 on the kernels and as the Eigen expressions the
//       model used before (compiled here at the baseline ISA).
//   Step/<isa>/t<threads>: one ForwardBackward at the default config, batch
//       512; counter DNN_GFLOP/s uses DESIGN.md's 3 x 2 x 709,664 flop/sample.
//
//   dnn_bench --gemm_bound   runs only the active path's GEMMs (DEEPFM_ISA
//       picks another) on 1 thread and on every core the process may use,
//       and prints per-shape GFLOP/s plus the time-weighted rate of one
//       step's nine GEMMs for each: the step's GEMM bound (the all-core one
//       is the throughput target's).
// Other flags are Google Benchmark's, e.g. --benchmark_filter=Step/.
// Times and rates are wall-clock (UseRealTime): the 2-thread runs do part of
// their work on a helper thread that the main thread's CPU time misses.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "glog/logging.h"
#include "worker/deepfm_model.h"
#include "worker/dnn_kernels.h"

namespace deepfm {
namespace {

constexpr int kBatch = 512;
constexpr double kDnnFlopPerSample = 3.0 * 2.0 * 709664.0;  // DESIGN.md section 3

struct GemmShape {
  std::string layer, pass;
  int m, n, k;
  bool trans_a, trans_b;
  double flop() const { return 2.0 * m * n * k; }
};

// The GEMMs DeepFMModel runs per step, in the order it runs them.
std::vector<GemmShape> StepGemms() {
  const DeepFMConfig c;
  std::vector<GemmShape> shapes;
  int in = c.dnn_input_width();
  std::vector<int> ins;
  for (size_t i = 0; i < c.hidden_units.size(); ++i) {
    const int out = c.hidden_units[i];
    const std::string layer = "layer" + std::to_string(i);
    shapes.push_back({layer, "fwd", kBatch, out, in, false, false});
    shapes.push_back({layer, "dW", in, out, kBatch, true, false});
    const int dx_width = i == 0 ? c.num_fields * c.embedding_dim : in;
    shapes.push_back({layer, "dX", kBatch, dx_width, out, false, true});
    in = out;
  }
  return shapes;
}

std::vector<float> Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// "avx512_bf16": the native BF16 GEMM (dnn::NativeBf16Gemm), on bf16 operands.
constexpr const char* kNativeBf16 = "avx512_bf16";

std::string GemmName(const std::string& path, const GemmShape& s, int threads) {
  return "Gemm/" + path + "/" + s.layer + "/" + s.pass + "/M" +
         std::to_string(s.m) + "_N" + std::to_string(s.n) + "_K" + std::to_string(s.k) + "/t" +
         std::to_string(threads);
}

void BM_Gemm(benchmark::State& state, dnn::GemmFn gemm, GemmShape s, int threads) {
  const int lda = s.trans_a ? s.m : s.k;
  const int ldb = s.trans_b ? s.k : s.n;
  const std::vector<float> a = Random(size_t(s.m) * s.k, 1), b = Random(size_t(s.k) * s.n, 2);
  std::vector<float> c(size_t(s.m) * s.n);
  for (auto _ : state) {
    dnn::ParallelGemm(gemm, threads, a.data(), lda, b.data(), ldb, c.data(), s.n, s.m, s.n, s.k,
                      s.trans_a, s.trans_b, 0.0f);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(s.flop() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int kElemRows = kBatch, kElemCols = 1024;

void BM_BiasRelu(benchmark::State& state, const dnn::Kernels* kern) {
  std::vector<float> c = Random(size_t(kElemRows) * kElemCols, 3);
  const std::vector<float> bias = Random(kElemCols, 4);
  for (auto _ : state) {
    if (kern != nullptr) {
      kern->bias_relu(c.data(), kElemCols, bias.data(), kElemRows, kElemCols);
    } else {
      Eigen::Map<RowMatrix> h(c.data(), kElemRows, kElemCols);
      const Eigen::Map<const Eigen::RowVectorXf> b(bias.data(), kElemCols);
      h = (h.rowwise() + b).cwiseMax(0.0f);
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kElemRows * kElemCols * 8);
}

void BM_ReluBackward(benchmark::State& state, const dnn::Kernels* kern) {
  const std::vector<float> act = Random(size_t(kElemRows) * kElemCols, 5);
  const std::vector<float> d0 = Random(size_t(kElemRows) * kElemCols, 6);
  std::vector<float> d = d0, sums(kElemCols);
  for (auto _ : state) {
    // The mask is idempotent, so reusing d across iterations keeps the
    // memory traffic the same without a copy in the timed loop.
    if (kern != nullptr) {
      kern->relu_backward(d.data(), act.data(), kElemRows, kElemCols, sums.data());
    } else {
      Eigen::Map<RowMatrix> dz(d.data(), kElemRows, kElemCols);
      const Eigen::Map<const RowMatrix> a(act.data(), kElemRows, kElemCols);
      dz.array() = (a.array() > 0.0f).select(dz.array(), 0.0f);
      Eigen::Map<Eigen::RowVectorXf>(sums.data(), kElemCols).noalias() = dz.colwise().sum();
    }
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kElemRows * kElemCols * 12);
}

void BM_Step(benchmark::State& state, std::string isa, int threads, bool bf16) {
  DeepFMConfig c;
  c.bf16 = bf16;
  c.dnn_isa = isa;
  c.dnn_threads = threads;
  DeepFMModel model(c);
  model.InitDense(1);
  // A batch shaped like Criteo after de-duplication: about half the
  // (row, field) uses share a key.
  const int B = kBatch, F = c.num_fields, U = B * F / 2;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0, 0.01f);
  std::uniform_real_distribution<float> uniform(0, 3);
  std::vector<float> rows(size_t(U) * c.row_width()), dense(size_t(B) * c.num_dense), labels(B);
  std::vector<float> grads(rows.size());
  std::vector<int32_t> inverse(size_t(B) * F);
  for (float& v : rows) v = normal(rng);
  for (float& v : dense) v = uniform(rng);
  for (int32_t& v : inverse) v = int32_t(rng() % U);
  for (int b = 0; b < B; ++b) labels[b] = float(b % 4 == 0);
  for (auto _ : state) {
    const float loss = model.ForwardBackward(B, dense.data(), rows.data(), U, inverse.data(),
                                             labels.data(), grads.data());
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * B);
  state.counters["DNN_GFLOP/s"] = benchmark::Counter(kDnnFlopPerSample * B * 1e-9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

// 1, 2 and every core the process may use.
std::vector<int> ThreadCounts() {
  std::vector<int> t = {1, 2};
  if (dnn::DefaultThreads() > 2) t.push_back(dnn::DefaultThreads());
  return t;
}

std::vector<const dnn::Kernels*> Paths() {
  std::vector<const dnn::Kernels*> paths;
  for (dnn::Isa isa : {dnn::Isa::kGeneric, dnn::Isa::kAvx2, dnn::Isa::kAvx512}) {
    if (const dnn::Kernels* k = dnn::KernelsFor(isa)) paths.push_back(k);
  }
  return paths;
}

void RegisterAll() {
  for (const dnn::Kernels* kern : Paths()) {
    for (int threads : ThreadCounts()) {
      for (const GemmShape& s : StepGemms()) {
        benchmark::RegisterBenchmark(GemmName(kern->name, s, threads).c_str(), BM_Gemm, kern->gemm,
                                     s, threads)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
    }
  }
  if (const dnn::GemmFn native = dnn::NativeBf16Gemm()) {
    for (int threads : ThreadCounts()) {
      for (const GemmShape& s : StepGemms()) {
        benchmark::RegisterBenchmark(GemmName(kNativeBf16, s, threads).c_str(), BM_Gemm, native, s,
                                     threads)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
    }
  }
  for (const dnn::Kernels* kern : Paths()) {
    benchmark::RegisterBenchmark(("BiasRelu/" + std::string(kern->name)).c_str(), BM_BiasRelu, kern)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("ReluBackward/" + std::string(kern->name)).c_str(),
                                 BM_ReluBackward, kern)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("BiasRelu/eigen_expr", BM_BiasRelu, nullptr)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("ReluBackward/eigen_expr", BM_ReluBackward, nullptr)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  for (const dnn::Kernels* kern : Paths()) {
    for (int threads : ThreadCounts()) {
      for (bool bf16 : {false, true}) {
        // StepBf16 on the avx512 path runs the native BF16 GEMM where the
        // CPU has it (DEEPFM_NATIVE_BF16=0 turns it off for a comparison).
        benchmark::RegisterBenchmark((std::string(bf16 ? "StepBf16/" : "Step/") + kern->name +
                                      "/t" + std::to_string(threads))
                                         .c_str(),
                                     BM_Step, std::string(kern->name), threads, bf16)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

// Console output as usual, plus a summary of the GEMM runs at the end.
class GemmBoundReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      // Plain runs, or the median when --benchmark_repetitions is given.
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      const auto it = run.counters.find("GFLOP/s");
      if (it == run.counters.end()) continue;
      gflops_[run.run_name.function_name] = it->second.value;
    }
  }

  void PrintSummary(const std::string& path, int threads) const {
    std::printf("\nGEMM rates of the %s path, %d thread%s, batch %d:\n", path.c_str(), threads,
                threads == 1 ? "" : "s", kBatch);
    std::printf("%-7s %-4s %6s %6s %6s %9s %10s\n", "layer", "pass", "M", "N", "K", "GFLOP/s",
                "time_us");
    double flop = 0, seconds = 0;
    for (const GemmShape& s : StepGemms()) {
      const auto it = gflops_.find(GemmName(path, s, threads));
      if (it == gflops_.end()) continue;
      const double us = s.flop() / (it->second * 1e9) * 1e6;
      std::printf("%-7s %-4s %6d %6d %6d %9.1f %10.1f\n", s.layer.c_str(), s.pass.c_str(), s.m, s.n,
                  s.k, it->second, us);
      flop += s.flop();
      seconds += us * 1e-6;
    }
    if (seconds > 0) {
      std::printf(
          "step GEMMs: %.3f GFLOP in %.3f ms = %.1f GFLOP/s, %.0f samples/s at %.2f MFLOP a "
          "sample (the step's GEMM bound on %d thread%s)\n",
          flop * 1e-9, seconds * 1e3, flop * 1e-9 / seconds, flop / seconds / kDnnFlopPerSample,
          kDnnFlopPerSample * 1e-6, threads, threads == 1 ? "" : "s");
    }
  }

 private:
  std::map<std::string, double> gflops_;
};

}  // namespace
}  // namespace deepfm

int main(int argc, char** argv) {
  bool gemm_bound = false;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--gemm_bound") == 0) {
      gemm_bound = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  deepfm::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (gemm_bound) {
    const deepfm::dnn::Kernels& active = deepfm::dnn::ActiveKernels();
    deepfm::GemmBoundReporter reporter;
    const int all = deepfm::dnn::DefaultThreads();
    // The native BF16 GEMM too, where the active path is avx512 and the CPU has it.
    const bool native =
        active.isa == deepfm::dnn::Isa::kAvx512 && deepfm::dnn::NativeBf16Gemm() != nullptr;
    const std::string paths = std::string(active.name) + (native ? "|avx512_bf16" : "");
    benchmark::RunSpecifiedBenchmarks(
        &reporter, "^Gemm/(" + paths + ")/.*/t(1|" + std::to_string(all) + ")(/|$)");
    for (const std::string path : {std::string(active.name), std::string(native ? "avx512_bf16" : "")}) {
      if (path.empty()) continue;
      reporter.PrintSummary(path, 1);
      if (all > 1) reporter.PrintSummary(path, all);
    }
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}

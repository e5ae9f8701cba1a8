// Dispatch for the DNN kernels (baseline ISA: this TU runs on every CPU, and
// only calls into the wider TUs once the CPU has been asked).
#include "worker/dnn_kernels.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include "glog/logging.h"
#include "worker/dnn_kernels_isa.h"

namespace deepfm {
namespace dnn {
namespace {

constexpr Kernels kGenericKernels = {Isa::kGeneric, "generic", &generic::Gemm, &generic::BiasRelu,
                                     &generic::ReluBackward, &generic::BiasReluBf16,
    &generic::ReluBackwardBf16, &generic::RoundToBf16, &generic::PoolRows, &generic::UnpoolRows};
constexpr Kernels kAvx2Kernels = {Isa::kAvx2, "avx2", &avx2::Gemm, &avx2::BiasRelu,
                                  &avx2::ReluBackward, &avx2::BiasReluBf16,
    &avx2::ReluBackwardBf16, &avx2::RoundToBf16, &avx2::PoolRows, &avx2::UnpoolRows};
constexpr Kernels kAvx512Kernels = {Isa::kAvx512, "avx512", &avx512::Gemm, &avx512::BiasRelu,
                                    &avx512::ReluBackward, &avx512::BiasReluBf16,
    &avx512::ReluBackwardBf16, &avx512::RoundToBf16, &avx512::PoolRows, &avx512::UnpoolRows};

const Kernels& TableOf(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return kAvx512Kernels;
    case Isa::kAvx2:
      return kAvx2Kernels;
    case Isa::kGeneric:
      break;
  }
  return kGenericKernels;
}

std::string SupportedList(const CpuIsaSupport& cpu) {
  std::string out;
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512}) {
    if (!Supports(cpu, isa)) continue;
    if (!out.empty()) out += ", ";
    out += IsaName(isa);
  }
  return out;
}

// The process's arena for intra-step work, as wide as the cores the process
// may use. Every model's GEMMs run in it, so callers share one set of
// worker threads and never oversubscribe the cores; never destroyed, so no
// exit-order hazards.
tbb::task_arena& Arena() {
  static tbb::task_arena* arena = new tbb::task_arena(tbb::info::default_concurrency());
  return *arena;
}

// Blocks are multiples of this many rows/columns, so each starts on a
// whole number of 64-byte vectors where it can.
constexpr int kBlockAlign = 16;
// Blocks per thread: more than one lets a thread whose core is free take
// over blocks of one whose core is busy elsewhere (a shard, the reader).
constexpr int kBlocksPerThread = 2;

}  // namespace

const char* IsaName(Isa isa) { return TableOf(isa).name; }

bool ParseIsa(const std::string& name, Isa* isa) {
  for (Isa candidate : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512}) {
    if (name == IsaName(candidate)) {
      *isa = candidate;
      return true;
    }
  }
  return false;
}

CpuIsaSupport DetectCpu() {
  CpuIsaSupport cpu;
  // libgcc's checks include the OS having enabled the YMM/ZMM register
  // state (XGETBV), not just the CPUID bits.
  __builtin_cpu_init();
  cpu.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = cpu.avx2 && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
  cpu.avx512_bf16 = cpu.avx512 && __builtin_cpu_supports("avx512bf16");
  return cpu;
}

bool Supports(const CpuIsaSupport& cpu, Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return cpu.avx512;
    case Isa::kAvx2:
      return cpu.avx2;
    case Isa::kGeneric:
      break;
  }
  return true;
}

const Kernels* KernelsFor(Isa isa) {
  static const CpuIsaSupport cpu = DetectCpu();
  return Supports(cpu, isa) ? &TableOf(isa) : nullptr;
}

const Kernels* ChooseKernels(const char* forced, const CpuIsaSupport& cpu, std::string* error) {
  if (forced == nullptr || *forced == '\0') {
    for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
      if (Supports(cpu, isa)) return &TableOf(isa);
    }
    return &kGenericKernels;
  }
  Isa isa;
  if (!ParseIsa(forced, &isa)) {
    *error = std::string("DEEPFM_ISA='") + forced +
             "' is not a DNN kernel path; use one of generic, avx2, avx512, or unset it to pick "
             "the best this CPU supports (" +
             SupportedList(cpu) + ")";
    return nullptr;
  }
  if (!Supports(cpu, isa)) {
    *error = std::string("DEEPFM_ISA=") + forced + " needs " +
             (isa == Isa::kAvx512 ? "AVX-512 F/BW/DQ/VL with FMA" : "AVX2 with FMA") +
             ", which this CPU (or OS) does not provide; it supports: " + SupportedList(cpu) +
             ". Unset DEEPFM_ISA or pick one of those";
    return nullptr;
  }
  return &TableOf(isa);
}

const Kernels& ActiveKernels() {
  static const Kernels& active = []() -> const Kernels& {
    const char* forced = std::getenv("DEEPFM_ISA");
    const CpuIsaSupport cpu = DetectCpu();
    std::string error;
    const Kernels* chosen = ChooseKernels(forced, cpu, &error);
    if (chosen == nullptr) LOG(FATAL) << error;
    LOG(INFO) << "DNN kernels: " << chosen->name
              << (forced != nullptr && *forced != '\0' ? " (forced by DEEPFM_ISA)"
                                                       : " (best this CPU supports)")
              << "; CPU supports " << SupportedList(cpu);
    return *chosen;
  }();
  return active;
}

std::string NativeBf16Missing() {
  static const CpuIsaSupport cpu = DetectCpu();
  if (!cpu.avx512_bf16) return "this CPU lacks AVX512_BF16 (vdpbf16ps)";
  const char* env = std::getenv("DEEPFM_NATIVE_BF16");
  if (env != nullptr && std::string(env) == "0") return "DEEPFM_NATIVE_BF16=0 turns it off";
  return "";
}

GemmFn NativeBf16Gemm() {
  static const GemmFn gemm = [] {
    const std::string missing = NativeBf16Missing();
    LOG(INFO) << "BF16 GEMM: "
              << (missing.empty() ? "native AVX512_BF16 dot products"
                                  : "fp32 kernels on bf16 values (" + missing + ")");
    return missing.empty() ? &avx512bf16::Gemm : static_cast<GemmFn>(nullptr);
  }();
  return gemm;
}

void ParallelGemm(const Kernels& kern, int threads, const float* a, int lda, const float* b,
                  int ldb, float* c, int ldc, int m, int n, int k, bool trans_a, bool trans_b,
                  float beta, bool rows_only) {
  ParallelGemm(kern.gemm, threads, a, lda, b, ldb, c, ldc, m, n, k, trans_a, trans_b, beta,
               rows_only);
}

void ParallelGemm(GemmFn gemm, int threads, const float* a, int lda, const float* b, int ldb,
                  float* c, int ldc, int m, int n, int k, bool trans_a, bool trans_b, float beta,
                  bool rows_only) {
  // Blocks of C's longer dimension: each is an independent GEMM on the same
  // K, so no reduction across threads is needed and results do not depend
  // on the thread count beyond Eigen's per-call blocking.
  const bool split_rows = rows_only || m >= n;
  const int len = split_rows ? m : n;
  const int parts = std::min(threads, len / kBlockAlign);
  if (parts < 2 || 2.0 * m * n * k < kParallelGemmMinFlops) {
    gemm(a, lda, b, ldb, c, ldc, m, n, k, trans_a, trans_b, beta);
    return;
  }
  const int want = std::min(parts * kBlocksPerThread, len / kBlockAlign);
  const int chunk = ((len + want - 1) / want + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
  const int blocks_total = (len + chunk - 1) / chunk;
  // The block runner captures one reference, so std::function stores it
  // inline: no allocation per call.
  struct Blocks {
    GemmFn gemm;
    const float *a, *b;
    float* c;
    int lda, ldb, ldc, m, n, k, len, chunk;
    bool trans_a, trans_b, split_rows;
    float beta;

    void Run(int t) const {
      const int begin = t * chunk;
      const int size = std::min(len, begin + chunk) - begin;
      if (size <= 0) return;
      if (split_rows) {
        const float* a_block = trans_a ? a + begin : a + static_cast<std::ptrdiff_t>(begin) * lda;
        gemm(a_block, lda, b, ldb, c + static_cast<std::ptrdiff_t>(begin) * ldc, ldc, size, n, k,
             trans_a, trans_b, beta);
      } else {
        const float* b_block = trans_b ? b + static_cast<std::ptrdiff_t>(begin) * ldb : b + begin;
        gemm(a, lda, b_block, ldb, c + begin, ldc, m, size, k, trans_a, trans_b, beta);
      }
    }
  };
  const Blocks blocks{gemm, a, b,   c,     lda,     ldb,     ldc,        m,
                      n,    k, len, chunk, trans_a, trans_b, split_rows, beta};
  // One task per block; an idle arena thread (or the caller, done with its
  // own) takes the next, so a core busy with other work delays the step by
  // at most the block it holds.
  Arena().execute([&] {
    tbb::parallel_for(0, blocks_total, 1, [&](int t) { blocks.Run(t); }, tbb::simple_partitioner());
  });
}

int DefaultThreads() { return tbb::info::default_concurrency(); }

void Gemm(const float* a, const float* b, float* c, int m, int n, int k, bool trans_a, bool trans_b,
          float beta) {
  ActiveKernels().gemm(a, trans_a ? m : k, b, trans_b ? k : n, c, n, m, n, k, trans_a, trans_b,
                       beta);
}

}  // namespace dnn
}  // namespace deepfm

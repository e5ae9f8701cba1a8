// Every DNN kernel path this CPU can run against naive references, and the
// whole float model on each path against the generic one.
//
// The ODR side (no weak symbol of an ISA object shared with other code) is
// checked on the objects by the dnn_kernels_odr_guard CTest.
#include "common/bf16.h"
#include "worker/dnn_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "worker/deepfm_model.h"

namespace deepfm {
namespace dnn {
namespace {

const Isa kAllIsas[] = {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512};

std::vector<float> RandomVector(size_t n, uint64_t seed, float lo = -1, float hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct GemmCase {
  int m, n, k;
  bool trans_a, trans_b;
  float beta;
};

// Operands stored with leading dimensions wider than the block (padding
// that must be neither read into the result nor written), checked against
// a double-precision reference with a tolerance scaled by sum |a||b|.
// bf16_operands: A and B hold bf16 values (what the native BF16 GEMM takes).
void CheckGemm(const GemmCase& g,
               const std::function<void(const float*, int, const float*, int, float*, int)>& gemm,
               const std::string& what, bool bf16_operands = false) {
  const int a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
  const int b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
  const int lda = a_cols + 3, ldb = b_cols + 5, ldc = g.n + 2;
  std::vector<float> a = RandomVector(size_t(a_rows) * lda, 1 + g.m);
  std::vector<float> b = RandomVector(size_t(b_rows) * ldb, 2 + g.n);
  if (bf16_operands) {
    for (float& x : a) x = Bf16ToFloat(FloatToBf16(x));
    for (float& x : b) x = Bf16ToFloat(FloatToBf16(x));
  }
  std::vector<float> c = RandomVector(size_t(g.m) * ldc, 3 + g.k);
  if (g.beta == 0) {
    // beta == 0 must overwrite, not scale: 0 * NaN would poison the result.
    for (int i = 0; i < g.m; ++i) {
      for (int j = 0; j < g.n; ++j)
        c[size_t(i) * ldc + j] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  const std::vector<float> c0 = c;
  auto at_a = [&](int i, int p) {
    return g.trans_a ? a[size_t(p) * lda + i] : a[size_t(i) * lda + p];
  };
  auto at_b = [&](int p, int j) {
    return g.trans_b ? b[size_t(j) * ldb + p] : b[size_t(p) * ldb + j];
  };

  gemm(a.data(), lda, b.data(), ldb, c.data(), ldc);

  int bad = 0;
  for (int i = 0; i < g.m; ++i) {
    for (int j = 0; j < ldc; ++j) {
      const size_t idx = size_t(i) * ldc + j;
      if (j >= g.n) {
        EXPECT_EQ(c[idx], c0[idx]) << what << ": wrote padding at (" << i << ", " << j << ")";
        continue;
      }
      double ref = 0, mag = 0;
      for (int p = 0; p < g.k; ++p) {
        ref += double(at_a(i, p)) * at_b(p, j);
        mag += std::abs(double(at_a(i, p)) * at_b(p, j));
      }
      if (g.beta != 0) {
        ref += double(g.beta) * c0[idx];
        mag += std::abs(double(g.beta) * c0[idx]);
      }
      const double tol = 4.0 * (g.k + 2) * std::numeric_limits<float>::epsilon() * mag + 1e-30;
      if (!(std::abs(c[idx] - ref) <= tol) && ++bad <= 5) {
        ADD_FAILURE() << what << ": C(" << i << ", " << j << ") = " << c[idx] << ", want " << ref
                      << " +- " << tol;
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

std::vector<GemmCase> OddCases() {
  // Sizes around the vector widths (8, 16) and Eigen's register blocks (24,
  // 48), plus degenerate ones; every transpose combination and beta kind.
  const int dims[][3] = {{1, 1, 1},     {3, 5, 7},     {17, 9, 33}, {31, 67, 130},
                         {129, 40, 21}, {50, 97, 259}, {8, 16, 1},  {1, 300, 45},
                         {260, 1, 17},  {0, 5, 3},     {5, 7, 0}};
  std::vector<GemmCase> cases;
  for (const auto& d : dims) {
    for (int t = 0; t < 4; ++t) {
      for (float beta : {0.0f, 1.0f, -0.5f}) {
        cases.push_back({d[0], d[1], d[2], (t & 1) != 0, (t & 2) != 0, beta});
      }
    }
  }
  return cases;
}

std::string Describe(const Kernels& kern, const GemmCase& g) {
  return std::string(kern.name) + " M=" + std::to_string(g.m) + " N=" + std::to_string(g.n) +
         " K=" + std::to_string(g.k) + (g.trans_a ? " A^T" : "") + (g.trans_b ? " B^T" : "") +
         " beta=" + std::to_string(g.beta);
}

class DnnKernelsTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    kern_ = KernelsFor(GetParam());
    if (kern_ == nullptr) GTEST_SKIP() << "this CPU cannot run " << IsaName(GetParam());
  }
  const Kernels* kern_ = nullptr;
};

TEST_P(DnnKernelsTest, GemmMatchesReferenceOnOddShapes) {
  for (const GemmCase& g : OddCases()) {
    CheckGemm(
        g,
        [&](const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
          kern_->gemm(a, lda, b, ldb, c, ldc, g.m, g.n, g.k, g.trans_a, g.trans_b, g.beta);
        },
        Describe(*kern_, g));
  }
}

TEST_P(DnnKernelsTest, ParallelGemmMatchesReference) {
  // Large enough to be split (by rows when M >= N, else by columns), with
  // block counts that do not divide the dimension.
  const GemmCase cases[] = {{400, 150, 260, false, false, 0.0f},
                            {150, 410, 257, false, true, 1.0f},
                            {333, 190, 300, true, false, 0.0f},
                            {180, 345, 257, true, true, -0.5f},
                            {1000, 33, 500, false, false, 0.0f}};
  for (const GemmCase& g : cases) ASSERT_GE(2.0 * g.m * g.n * g.k, kParallelGemmMinFlops);
  for (int threads : {2, 3}) {
    for (const GemmCase& g : cases) {
      CheckGemm(
          g,
          [&](const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
            ParallelGemm(*kern_, threads, a, lda, b, ldb, c, ldc, g.m, g.n, g.k, g.trans_a,
                         g.trans_b, g.beta);
          },
          Describe(*kern_, g) + " threads=" + std::to_string(threads));
    }
  }
}

TEST_P(DnnKernelsTest, ConcurrentParallelGemmCallersBothGetTheRightAnswer) {
  // A second caller finds the helpers busy and runs alone; both must be right.
  const GemmCase g{400, 160, 250, false, false, 0.0f};
  ASSERT_GE(2.0 * g.m * g.n * g.k, kParallelGemmMinFlops);
  auto run = [&](const std::string& who) {
    for (int rep = 0; rep < 8; ++rep) {
      CheckGemm(
          g,
          [&](const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
            ParallelGemm(*kern_, 2, a, lda, b, ldb, c, ldc, g.m, g.n, g.k, false, false, 0.0f);
          },
          who);
    }
  };
  std::thread other(run, "second caller");
  run("first caller");
  other.join();
}

TEST_P(DnnKernelsTest, BiasReluMatchesReference) {
  for (int m : {1, 7, 33}) {
    for (int n : {1, 15, 17, 67}) {
      const int ldc = n + 3;
      std::vector<float> c = RandomVector(size_t(m) * ldc, m * 100 + n);
      const std::vector<float> bias = RandomVector(n, n);
      const std::vector<float> c0 = c;
      kern_->bias_relu(c.data(), ldc, bias.data(), m, n);
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < ldc; ++j) {
          const size_t idx = size_t(i) * ldc + j;
          const float want = j < n ? std::max(c0[idx] + bias[j], 0.0f) : c0[idx];
          ASSERT_EQ(c[idx], want) << kern_->name << " m=" << m << " n=" << n << " (" << i << ", "
                                  << j << ")";
        }
      }
    }
  }
}

TEST_P(DnnKernelsTest, ReluBackwardMasksAndSumsColumns) {
  for (int m : {1, 9, 65}) {
    for (int n : {1, 16, 31, 70}) {
      const size_t size = size_t(m) * n;
      std::vector<float> act = RandomVector(size, m + n);
      for (size_t i = 0; i < size; i += 7) act[i] = 0.0f;  // exactly 0 passes nothing
      const std::vector<float> d0 = RandomVector(size, m * n);
      std::vector<float> d = d0, d_no_sums = d0;
      std::vector<float> sums(n, 123.0f);  // must be overwritten
      kern_->relu_backward(d.data(), act.data(), m, n, sums.data());
      kern_->relu_backward(d_no_sums.data(), act.data(), m, n, nullptr);
      for (int j = 0; j < n; ++j) {
        double want_sum = 0;
        for (int i = 0; i < m; ++i) {
          const size_t idx = size_t(i) * n + j;
          const float want = act[idx] > 0 ? d0[idx] : 0.0f;
          ASSERT_EQ(d[idx], want) << kern_->name << " (" << i << ", " << j << ")";
          ASSERT_EQ(d_no_sums[idx], want) << kern_->name << " (" << i << ", " << j << ")";
          want_sum += want;
        }
        EXPECT_NEAR(sums[j], want_sum, 1e-5 * m) << kern_->name << " column " << j;
      }
    }
  }
}

// The bf16 passes store exactly what the fp32 passes compute, rounded to
// nearest even (common/bf16 is the reference); the bias gradient still sums
// the unrounded values.
TEST_P(DnnKernelsTest, Bf16PassesRoundWhatTheyStore) {
  const int m = 37, n = 70, ldc = n + 2;
  std::vector<float> c = RandomVector(size_t(m) * ldc, 5);
  const std::vector<float> bias = RandomVector(n, 6);
  std::vector<float> want = c;
  kern_->bias_relu(want.data(), ldc, bias.data(), m, n);
  kern_->bias_relu_bf16(c.data(), ldc, bias.data(), m, n);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < ldc; ++j) {
      const size_t idx = size_t(i) * ldc + j;
      const float expect = j < n ? Bf16ToFloat(FloatToBf16(want[idx])) : want[idx];
      ASSERT_EQ(c[idx], expect) << kern_->name << " (" << i << ", " << j << ")";
    }
  }
  const std::vector<float> act = RandomVector(size_t(m) * n, 7);
  const std::vector<float> d0 = RandomVector(size_t(m) * n, 8);
  std::vector<float> d32 = d0, d16 = d0, s32(n), s16(n);
  kern_->relu_backward(d32.data(), act.data(), m, n, s32.data());
  kern_->relu_backward_bf16(d16.data(), act.data(), m, n, s16.data());
  for (size_t i = 0; i < d0.size(); ++i) ASSERT_EQ(d16[i], Bf16ToFloat(FloatToBf16(d32[i]))) << i;
  for (int j = 0; j < n; ++j) ASSERT_EQ(s16[j], s32[j]) << "column " << j;
  // Ties to even, Inf and NaN, through the plain rounding pass.
  auto bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  std::vector<float> special = {bits(0x3f808000u), bits(0x3f818000u), bits(0x3f808001u),
                                std::numeric_limits<float>::infinity(), bits(0x7f800001u),
                                -0.0f, bits(0x7f7fffffu), bits(0xbf808000u), bits(0xbf818000u),
                                bits(0x00018000u)};
  // The ties, by hand (common/bf16's own golden test pins the reference too).
  const uint32_t tie_bits[] = {0x3f800000u, 0x3f820000u};
  const uint32_t negative_tie_bits[] = {0xbf800000u, 0xbf820000u, 0x00020000u};
  std::vector<float> rounded = special;
  kern_->round_bf16(rounded.data(), static_cast<long>(rounded.size()));
  EXPECT_EQ(rounded[0], bits(tie_bits[0])) << kern_->name;
  EXPECT_EQ(rounded[1], bits(tie_bits[1])) << kern_->name;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rounded[7 + i], bits(negative_tie_bits[i])) << kern_->name;
  for (size_t i = 0; i < special.size(); ++i) {
    const float expect = Bf16ToFloat(FloatToBf16(special[i]));
    if (std::isnan(expect)) {
      EXPECT_TRUE(std::isnan(rounded[i])) << i;
    } else {
      EXPECT_EQ(rounded[i], expect) << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPath, DnnKernelsTest, ::testing::ValuesIn(kAllIsas),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

TEST(DnnDispatchTest, ContiguousGemmUsesTheActivePath) {
  for (int t = 0; t < 4; ++t) {
    const GemmCase g{19, 23, 37, (t & 1) != 0, (t & 2) != 0, 0.0f};
    const Kernels& active = ActiveKernels();
    CheckGemm(
        g,
        [&](const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
          // Compact copies: Gemm takes contiguous operands.
          const int a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
          const int b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
          std::vector<float> ac, bc, cc(size_t(g.m) * g.n);
          for (int i = 0; i < a_rows; ++i) ac.insert(ac.end(), a + i * lda, a + i * lda + a_cols);
          for (int i = 0; i < b_rows; ++i) bc.insert(bc.end(), b + i * ldb, b + i * ldb + b_cols);
          Gemm(ac.data(), bc.data(), cc.data(), g.m, g.n, g.k, g.trans_a, g.trans_b, g.beta);
          for (int i = 0; i < g.m; ++i) {
            std::copy(cc.begin() + i * g.n, cc.begin() + (i + 1) * g.n, c + i * ldc);
          }
        },
        Describe(active, g));
  }
}

TEST(DnnDispatchTest, ChoosesTheBestPathOrTheForcedOne) {
  const CpuIsaSupport none, avx2{true, false}, avx512{true, true};
  std::string error;
  EXPECT_EQ(ChooseKernels(nullptr, none, &error)->isa, Isa::kGeneric);
  EXPECT_EQ(ChooseKernels("", avx2, &error)->isa, Isa::kAvx2);
  EXPECT_EQ(ChooseKernels(nullptr, avx512, &error)->isa, Isa::kAvx512);
  EXPECT_EQ(ChooseKernels("generic", avx512, &error)->isa, Isa::kGeneric);
  EXPECT_EQ(ChooseKernels("avx2", avx512, &error)->isa, Isa::kAvx2);
  EXPECT_EQ(ChooseKernels("avx512", avx512, &error)->isa, Isa::kAvx512);
  // Each table's entries are that ISA's (a mix-up here would defeat the point).
  for (Isa isa : kAllIsas) {
    EXPECT_EQ(ChooseKernels(IsaName(isa), avx512, &error)->isa, isa);
    EXPECT_EQ(std::string(ChooseKernels(IsaName(isa), avx512, &error)->name), IsaName(isa));
  }
}

TEST(DnnDispatchTest, RefusesAPathTheCpuLacksOrAnUnknownName) {
  const CpuIsaSupport avx2_only{true, false};
  std::string error;
  EXPECT_EQ(ChooseKernels("avx512", avx2_only, &error), nullptr);
  EXPECT_NE(error.find("AVX-512"), std::string::npos) << error;
  EXPECT_NE(error.find("generic, avx2"), std::string::npos) << "should list what works: " << error;
  error.clear();
  EXPECT_EQ(ChooseKernels("avx2", CpuIsaSupport{}, &error), nullptr);
  EXPECT_NE(error.find("AVX2"), std::string::npos) << error;
  error.clear();
  EXPECT_EQ(ChooseKernels("sse9", avx2_only, &error), nullptr);
  EXPECT_NE(error.find("'sse9'"), std::string::npos) << error;
  EXPECT_NE(error.find("generic, avx2, avx512"), std::string::npos) << error;
}

TEST(DnnDispatchDeathTest, BadDeepfmIsaIsFatalWithTheReason) {
  // "threadsafe" re-runs the binary for the death test, so ActiveKernels'
  // once-only choice is made afresh there, under the variable set below.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        setenv("DEEPFM_ISA", "avx1024", 1);
        ActiveKernels();
      },
      "DEEPFM_ISA='avx1024' is not a DNN kernel path");
}

TEST(DnnDispatchTest, ActivePathIsOneTheCpuRuns) {
  const Kernels& active = ActiveKernels();
  EXPECT_EQ(KernelsFor(active.isa), &active);
  const char* forced = std::getenv("DEEPFM_ISA");
  if (forced != nullptr && *forced != '\0') {
    EXPECT_EQ(std::string(active.name), forced);
  } else {
    // Unforced: nothing better than the active path is available.
    for (Isa isa : kAllIsas) {
      if (static_cast<int>(isa) > static_cast<int>(active.isa)) {
        EXPECT_EQ(KernelsFor(isa), nullptr);
      }
    }
  }
}

// The whole float model on each path (and with 2 GEMM threads) against the
// generic path, at the default DNN widths and an odd batch.
struct Batch {
  int B = 0, U = 0;
  std::vector<float> dense_x, rows, labels;
  std::vector<int32_t> inverse;
};

Batch MakeBatch(const DeepFMConfig& c, int B, uint64_t seed) {
  Batch p;
  p.B = B;
  p.U = B * c.num_fields / 3 + 1;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 0.3f);
  std::uniform_real_distribution<float> uniform(0, 3);
  for (int i = 0; i < p.U * c.row_width(); ++i) p.rows.push_back(normal(rng));
  for (int i = 0; i < B * c.num_dense; ++i) p.dense_x.push_back(uniform(rng));
  for (int i = 0; i < B * c.num_fields; ++i) p.inverse.push_back(int32_t(rng() % p.U));
  for (int b = 0; b < B; ++b) p.labels.push_back(float(rng() % 2));
  return p;
}

struct StepResult {
  float loss = 0;
  std::vector<float> row_grads, probs;
  std::vector<std::vector<float>> dense_grads;
};

StepResult RunStep(DeepFMConfig c, const std::string& isa, int threads, const Batch& p) {
  c.dnn_isa = isa;
  c.dnn_threads = threads;
  DeepFMModel model(c);
  model.InitDense(17);
  // Non-zero biases so the bias+ReLU kernel's bias matters.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0, 0.05f);
  for (auto& t : model.dense()) {
    if (t.name.find("/bias") != std::string::npos) {
      for (float& v : t.values) v = normal(rng);
    }
  }
  StepResult r;
  r.row_grads.resize(size_t(p.U) * c.row_width());
  r.loss = model.ForwardBackward(p.B, p.dense_x.data(), p.rows.data(), p.U, p.inverse.data(),
                                 p.labels.data(), r.row_grads.data());
  for (const auto& t : model.dense()) r.dense_grads.push_back(t.grads);
  r.probs.resize(p.B);
  model.Predict(p.B, p.dense_x.data(), p.rows.data(), p.U, p.inverse.data(), r.probs.data());
  return r;
}

// Elementwise, relative to the largest magnitude in the tensor: summation
// order differs between paths, so tiny entries may differ relatively a lot.
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what, float rel = 2e-4f) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float scale = 0;
  for (float v : want) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 0) << what << " is all zero: the comparison proves nothing";
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], rel * scale) << what << "[" << i << "]";
  }
}

// One instance per path, so a path this CPU lacks is a reported skip, not
// a silent gap in the comparison.
class DnnModelPathsTest : public ::testing::TestWithParam<Isa> {};

TEST_P(DnnModelPathsTest, ForwardBackwardMatchesGeneric) {
  const Isa isa = GetParam();
  if (KernelsFor(isa) == nullptr) GTEST_SKIP() << "this CPU cannot run " << IsaName(isa);
  const DeepFMConfig c;  // 26 x 16 + 13 -> 1024 -> 256 -> 32 -> 1
  const Batch p = MakeBatch(c, 67, 3);
  const StepResult want = RunStep(c, "generic", 1, p);
  const std::vector<DenseTensorSpec> specs = DeepFMDenseSpecs(c);
  for (int threads : {1, 2}) {
    const std::string path = std::string(IsaName(isa)) + " threads=" + std::to_string(threads);
    SCOPED_TRACE(path);
    const StepResult got = RunStep(c, IsaName(isa), threads, p);
    EXPECT_NEAR(got.loss, want.loss, 1e-5 * std::abs(want.loss));
    ExpectClose(got.probs, want.probs, "probs");
    ExpectClose(got.row_grads, want.row_grads, "row grads");
    for (size_t t = 0; t < specs.size(); ++t) {
      ExpectClose(got.dense_grads[t], want.dense_grads[t], specs[t].name);
    }
  }
}

// The native BF16 GEMM (AVX512_BF16), where the CPU has it: exact products
// of bf16 operands summed in fp32, on the odd shapes, the step's shapes, and
// split over threads.
TEST(NativeBf16GemmTest, MatchesTheReferenceOnBf16Operands) {
  const GemmFn gemm = NativeBf16Gemm();
  if (gemm == nullptr) GTEST_SKIP() << "native BF16 GEMM not tested: " << NativeBf16Missing();
  std::vector<GemmCase> cases = OddCases();
  for (const GemmCase& g : std::vector<GemmCase>{{512, 1024, 429, false, false, 0.0f},
                                                 {429, 1024, 512, true, false, 0.0f},
                                                 {512, 429, 1024, false, true, 0.0f}}) {
    cases.push_back(g);
  }
  for (const GemmCase& g : cases) {
    const std::string what = "bf16 M=" + std::to_string(g.m) + " N=" + std::to_string(g.n) +
                             " K=" + std::to_string(g.k) + (g.trans_a ? " A^T" : "") +
                             (g.trans_b ? " B^T" : "") + " beta=" + std::to_string(g.beta);
    CheckGemm(
        g,
        [&](const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
          gemm(a, lda, b, ldb, c, ldc, g.m, g.n, g.k, g.trans_a, g.trans_b, g.beta);
        },
        what, /*bf16_operands=*/true);
    if (2.0 * g.m * g.n * g.k >= kParallelGemmMinFlops) {
      CheckGemm(
          g,
          [&](const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
            ParallelGemm(gemm, 2, a, lda, b, ldb, c, ldc, g.m, g.n, g.k, g.trans_a, g.trans_b,
                         g.beta);
          },
          what + " on 2 threads", /*bf16_operands=*/true);
    }
  }
}

// A BF16 training step on the native GEMM equals the same step on the
// generic fp32 kernels (both on bf16 values) up to summation order, which
// may move a value to the neighbouring bf16.
TEST(NativeBf16GemmTest, ABf16StepMatchesTheFp32KernelsOnBf16Values) {
  if (NativeBf16Gemm() == nullptr || KernelsFor(Isa::kAvx512) == nullptr) {
    GTEST_SKIP() << "native BF16 GEMM not tested: " << NativeBf16Missing();
  }
  DeepFMConfig c;
  c.bf16 = true;
  const Batch p = MakeBatch(c, 67, 3);
  const StepResult want = RunStep(c, "generic", 1, p);
  const StepResult got = RunStep(c, "avx512", 2, p);
  EXPECT_NEAR(got.loss, want.loss, 1e-3 * std::abs(want.loss));
  ExpectClose(got.probs, want.probs, "probs", 1e-2);
  ExpectClose(got.row_grads, want.row_grads, "row grads", 1e-2);
  const std::vector<DenseTensorSpec> specs = DeepFMDenseSpecs(c);
  for (size_t t = 0; t < specs.size(); ++t) {
    ExpectClose(got.dense_grads[t], want.dense_grads[t], specs[t].name, 1e-2);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPath, DnnModelPathsTest, ::testing::ValuesIn(kAllIsas),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

}  // namespace
}  // namespace dnn
}  // namespace deepfm

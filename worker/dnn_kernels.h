// Single-precision kernels of the DeepFM DNN (GEMM, bias+ReLU, ReLU
// backward), compiled once per instruction set and picked at run time.
//
// Release binaries are built for baseline x86-64, so the AVX2+FMA and
// AVX-512 copies live in their own translation units (dnn_kernels_avx2.cc,
// dnn_kernels_avx512.cc) compiled with per-file flags, and are reached only
// through a Kernels table chosen after asking the CPU. The active table is
// the best the CPU has, unless DEEPFM_ISA=generic|avx2|avx512 forces one (for
// tests and benchmarks; a path the CPU lacks is refused with a fatal error).
//
// All matrices are row-major with explicit leading dimensions (elements
// between consecutive rows), so callers can pass sub-blocks.
#pragma once

#include <cstdint>
#include <string>

namespace deepfm {
namespace dnn {

enum class Isa { kGeneric, kAvx2, kAvx512 };

// "generic", "avx2", "avx512".
const char* IsaName(Isa isa);
// Parses IsaName's spellings; false for anything else.
bool ParseIsa(const std::string& name, Isa* isa);

// One instruction set's kernels. Plain function pointers: the ISA-specific
// code must not share any inline or template code with the rest of the
// program (see dnn_kernels_body.inc), so nothing fancier crosses the seam.
// Kernels::gemm's signature.
using GemmFn = void (*)(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m,
                        int n, int k, bool trans_a, bool trans_b, float beta);

struct Kernels {
  Isa isa;
  const char* name;

  // C[M x N] = op(A)[M x K] * op(B)[K x N] + beta * C. op(A) is A, stored
  // [M x K] with leading dimension lda, or (trans_a) A^T with A stored
  // [K x M]; likewise op(B). beta == 0 ignores C's old contents (it may hold
  // NaN).
  void (*gemm)(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n,
               int k, bool trans_a, bool trans_b, float beta);

  // c[i][j] = max(c[i][j] + bias[j], 0) over c[M x N] (leading dimension ldc).
  void (*bias_relu)(float* c, int ldc, const float* bias, int m, int n);

  // ReLU backward through a layer with output act[M x N] (both contiguous):
  // d[i][j] = act[i][j] > 0 ? d[i][j] : 0, and, when col_sums is not null,
  // col_sums[j] = sum_i of the masked d[i][j] (the layer's bias gradient),
  // in the same pass over d.
  void (*relu_backward)(float* d, const float* act, int m, int n, float* col_sums);

  // BF16 training: the same two passes, rounding every value they store to
  // bfloat16 (round to nearest even; col_sums still sums the unrounded
  // values in fp32), and a plain rounding pass.
  void (*bias_relu_bf16)(float* c, int ldc, const float* bias, int m, int n);
  void (*relu_backward_bf16)(float* d, const float* act, int m, int n, float* col_sums);
  void (*round_bf16)(float* x, long n);

  // Embedding pooling (worker/pooling.h), one (row, feature) at a time over
  // rows [U x width] of [w, e[0..width-1)]: *out_w and out_e[0..width-1)
  // get the sum of the rows inverse[begin..end), times `factor` when there
  // are two or more (one row is copied exactly), end > begin; and its
  // backward, grads[inverse[i]] += [d_w, d_e] (times factor when
  // end - begin > 1) for every i in [begin, end). width <= 4097.
  void (*pool_rows)(const float* rows, const int32_t* inverse, int32_t begin, int32_t end,
                    int width, float factor, float* out_w, float* out_e);
  void (*unpool_rows)(float d_w, const float* d_e, float factor, const int32_t* inverse,
                      int32_t begin, int32_t end, int width, float* grads);
};

// What this CPU (and OS, for the wider register state) can run.
struct CpuIsaSupport {
  bool avx2 = false;    // AVX2 and FMA
  bool avx512 = false;  // AVX-512 F, BW, DQ, VL, plus AVX2 and FMA
  bool avx512_bf16 = false;  // AVX512_BF16 (vdpbf16ps), plus all of the above
};
CpuIsaSupport DetectCpu();
bool Supports(const CpuIsaSupport& cpu, Isa isa);

// BF16 training's GEMM on the CPU's native bf16 dot products (AVX512_BF16's
// vdpbf16ps: operands packed to bfloat16, products summed in fp32), for
// models on the avx512 path; nullptr where the CPU lacks AVX512_BF16 or the
// environment sets DEEPFM_NATIVE_BF16=0. Same contract as Kernels::gemm;
// operands are rounded to bf16 (nearest even), which is exact for the bf16
// model's, already bf16-valued. AMX-BF16 is not used yet.
GemmFn NativeBf16Gemm();
// Why NativeBf16Gemm() is null, or "" when it is not: names the missing
// CPU feature, for logs and test skips.
std::string NativeBf16Missing();

// The kernels for `isa`; nullptr when this CPU cannot run them.
const Kernels* KernelsFor(Isa isa);

// The table to use given DEEPFM_ISA's value (`forced`; null or empty means
// unset: the best `cpu` supports). On a bad or unsupported value returns
// nullptr and says why in *error.
const Kernels* ChooseKernels(const char* forced, const CpuIsaSupport& cpu, std::string* error);

// The process-wide table: chosen on first use from DEEPFM_ISA and the CPU,
// logged once, fatal if DEEPFM_ISA asks for something impossible.
const Kernels& ActiveKernels();

// Below this many flops (2 M N K) ParallelGemm does not split: waking a
// helper costs 30-45 us on the 2-core VMs measured (the 8.4 MFLOP layer-2
// GEMMs took 68 us on two threads against 46 us on one with AVX-512), while
// the layer-0/1 GEMMs (>= 268 MFLOP) ran 1.7-1.8x faster on two.
constexpr double kParallelGemmMinFlops = 3e7;

// `kern.gemm` split into column or row blocks of C (whichever dimension is
// longer), about two per thread for up to `threads` threads, run as oneTBB
// tasks in the process's one arena (as wide as the cores the process may
// use), the caller taking part. Concurrent callers share the arena's
// threads. Small products and threads <= 1 run on the caller alone. The
// blocks depend only on the shape and `threads`, so the result does not
// depend on which thread runs which block, and equals kern.gemm's up to the
// blocking Eigen chooses per block.
//
// rows_only: split only into row blocks, each a multiple of 16 rows but the
// last. Eigen sums a row alike in any block of whole 4-lane packets,
// whatever its height, so with a row count that is a multiple of 4 the
// result no longer depends on `threads` at all (scoring:
// DeepFMModel::PredictRowsFilled).
void ParallelGemm(const Kernels& kern, int threads, const float* a, int lda, const float* b,
                  int ldb, float* c, int ldc, int m, int n, int k, bool trans_a, bool trans_b,
                  float beta, bool rows_only = false);
// The same with any GEMM of that contract (NativeBf16Gemm's).
void ParallelGemm(GemmFn gemm, int threads, const float* a, int lda, const float* b, int ldb,
                  float* c, int ldc, int m, int n, int k, bool trans_a, bool trans_b, float beta,
                  bool rows_only = false);

// The cores this process may use (oneTBB's default concurrency: the CPU
// affinity mask, so a container's or Slurm's CPU set counts, not the host's).
int DefaultThreads();

// Convenience: contiguous row-major operands on the active kernels.
void Gemm(const float* a, const float* b, float* c, int m, int n, int k, bool trans_a, bool trans_b,
          float beta);

}  // namespace dnn
}  // namespace deepfm

// Internal to the DNN kernels: the entry points each instruction-set
// translation unit defines (dnn_kernels_{generic,avx2,avx512}.cc, all built
// from dnn_kernels_body.inc). Declarations only, so including this in a TU
// compiled with wider ISA flags instantiates nothing. Use dnn_kernels.h.
#pragma once

#include <cstdint>

// The signatures are those of dnn::Kernels' members.
#define DEEPFM_DNN_DECLARE_KERNELS(ns)                                                         \
  namespace ns {                                                                               \
  void Gemm(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n, \
            int k, bool trans_a, bool trans_b, float beta);                                    \
  void BiasRelu(float* c, int ldc, const float* bias, int m, int n);                           \
  void ReluBackward(float* d, const float* act, int m, int n, float* col_sums);                \
  void BiasReluBf16(float* c, int ldc, const float* bias, int m, int n);                       \
  void ReluBackwardBf16(float* d, const float* act, int m, int n, float* col_sums);            \
  void RoundToBf16(float* x, long n);                                                          \
  void PoolRows(const float* rows, const int32_t* inverse, int32_t begin, int32_t end, int width, \
                float factor, float* out_w, float* out_e);                                     \
  void UnpoolRows(float d_w, const float* d_e, float factor, const int32_t* inverse,           \
                  int32_t begin, int32_t end, int width, float* grads);                        \
  }

namespace deepfm {
namespace dnn {
DEEPFM_DNN_DECLARE_KERNELS(generic)
DEEPFM_DNN_DECLARE_KERNELS(avx2)
DEEPFM_DNN_DECLARE_KERNELS(avx512)
// dnn_gemm_avx512bf16.cc: the GEMM on AVX512_BF16 dot products.
namespace avx512bf16 {
void Gemm(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m, int n, int k,
          bool trans_a, bool trans_b, float beta);
}  // namespace avx512bf16
}  // namespace dnn
}  // namespace deepfm

#undef DEEPFM_DNN_DECLARE_KERNELS

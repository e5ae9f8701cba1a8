// The DNN kernels with AVX2 + FMA (worker/CMakeLists.txt gives this file
// -mavx2 -mfma). Reached only through dnn::KernelsFor after a CPU check.
#if !defined(__AVX2__) || !defined(__FMA__)
#error "build this file with -mavx2 -mfma (see worker/CMakeLists.txt)"
#endif
#define DEEPFM_DNN_ISA_NS avx2
#define Eigen EigenDnnAvx2
#include "worker/dnn_kernels_body.inc"

// The DNN kernels with AVX-512 (worker/CMakeLists.txt gives this file
// -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma; Eigen's AVX-512 packet
// code uses DQ). Reached only through dnn::KernelsFor after a CPU check.
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "build this file with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif
#define DEEPFM_DNN_ISA_NS avx512
#define Eigen EigenDnnAvx512
#include "worker/dnn_kernels_body.inc"

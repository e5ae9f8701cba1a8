// The DNN kernels at the build's baseline ISA (SSE2 on x86-64): the path
// every CPU can run. Eigen is renamed here too, so that these kernels never
// share (weak) code with any other TU, whatever flags that TU had.
#define DEEPFM_DNN_ISA_NS generic
#define Eigen EigenDnnGeneric
#include "worker/dnn_kernels_body.inc"

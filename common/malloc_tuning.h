// Keeps large per-step buffers (a step moves megabytes of dense weights and
// gradients through freshly allocated protobuf and decode buffers) on the
// heap instead of fresh mmap()s: glibc would otherwise map and unmap them on
// every request, and each new page costs a fault (about 5% of a shard's CPU
// in the profile of the default job).
#pragma once

#include <malloc.h>

namespace deepfm {

inline void TuneMallocForLargeBuffers() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value on 64-bit
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace deepfm

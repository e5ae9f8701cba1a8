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

// A process under a memory budget (a shard with --ps_memory_budget_mb) keeps
// one malloc arena. glibc gives each thread that meets contention an arena
// of its own (up to 8 per core); gRPC's handler threads then each keep a
// step's request buffers and the table rows they created in their own heap,
// and what one arena frees the others cannot reuse: measured on a 256 MiB
// budget, 57 MiB above it with the default arenas, 36 MiB with one, at the
// same push rate on 2 cores. It must run before any thread allocates: an
// arena made before it stays in use.
inline void LimitMallocArenas() { mallopt(M_ARENA_MAX, 1); }

}  // namespace deepfm

// The calling process's resident memory, from /proc/self/status: what a
// container's memory limit is measured against.
#pragma once

#include <cstdint>

namespace deepfm {

struct ProcessMemory {
  uint64_t rss_bytes = 0;       // VmRSS: resident now
  uint64_t peak_rss_bytes = 0;  // VmHWM: the most ever resident
};

// Zeros where /proc is not readable (not Linux, or a sandbox without it).
ProcessMemory ReadProcessMemory();

}  // namespace deepfm

// A process's resident memory, from /proc/<pid>/status: what a container's
// memory limit is measured against.
#pragma once

#include <cstdint>

namespace deepfm {

struct ProcessMemory {
  uint64_t rss_bytes = 0;       // VmRSS: resident now
  uint64_t peak_rss_bytes = 0;  // VmHWM: the most ever resident
};

// Of process `pid`, 0 the caller. Zeros where /proc is not readable (not
// Linux, a sandbox without it, a process that is gone).
ProcessMemory ReadProcessMemory(int pid = 0);

}  // namespace deepfm

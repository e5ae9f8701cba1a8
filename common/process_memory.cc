#include "common/process_memory.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace deepfm {

ProcessMemory ReadProcessMemory(int pid) {
  ProcessMemory m;
  const std::string path =
      pid == 0 ? std::string("/proc/self/status") : "/proc/" + std::to_string(pid) + "/status";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return m;
  char line[256];
  while (std::fgets(line, sizeof(line), f)) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "VmRSS: %llu kB", &kb) == 1) m.rss_bytes = kb * 1024;
    if (std::sscanf(line, "VmHWM: %llu kB", &kb) == 1) m.peak_rss_bytes = kb * 1024;
  }
  std::fclose(f);
  return m;
}

}  // namespace deepfm

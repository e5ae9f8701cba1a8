#include "launcher/machine_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "worker/dnn_kernels.h"

namespace deepfm::launcher {

namespace {

// The value of the first "key<spaces>: value" line of a /proc file.
std::string ProcField(const char* file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "unknown";
}

}  // namespace

std::map<std::string, std::string> DescribeMachine() {
  std::map<std::string, std::string> m;
  m["cpu"] = ProcField("/proc/cpuinfo", "model name");
  m["cores"] = std::to_string(dnn::DefaultThreads());
  m["isa"] = dnn::ActiveKernels().name;
  m["avx512_bf16"] = dnn::NativeBf16Gemm() != nullptr ? "yes" : "no";
  m["memory"] = ProcField("/proc/meminfo", "MemTotal");
  char host[256] = {0};
  m["host"] = gethostname(host, sizeof(host) - 1) == 0 ? host : "unknown";
  utsname u{};
  m["kernel"] = uname(&u) == 0 ? std::string(u.sysname) + " " + u.release : "unknown";
  return m;
}

}  // namespace deepfm::launcher

// What a job ran on, for job.json and the report: CPU model, cores this
// process may use, the DNN kernel path picked at run time, memory, host and
// kernel. Read from /proc and uname; a field the machine does not tell is
// "unknown".
#pragma once

#include <map>
#include <string>

namespace deepfm::launcher {

std::map<std::string, std::string> DescribeMachine();

}  // namespace deepfm::launcher

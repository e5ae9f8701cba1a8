#include "launcher/task_command.h"

#include <filesystem>
#include <sstream>

#include "launcher/job_flags.h"

namespace deepfm::launcher {

int MetricsPortOffset(const ClusterSpec& spec, const std::string& type, int index) {
  if (type == "ps") return index;
  const int ps = static_cast<int>(spec.ps.size());
  if (type == "chief") return ps + index;
  return ps + static_cast<int>(spec.chief.size()) + index;
}

ChildSpec TaskCommand(const FlagSet& flags, const ClusterSpec& spec, const std::string& type,
                      int index, const JobPaths& job, const std::vector<std::string>& extra) {
  const std::vector<std::string>& list = type == "ps"      ? spec.ps
                                         : type == "chief" ? spec.chief
                                                           : spec.worker;
  ChildSpec c;
  c.name = type + std::to_string(index);
  std::string host;
  int port = 0;
  SplitHostPort(list.at(index), &host, &port);
  std::istringstream prefix(flags.Get("launch_prefix"));
  for (std::string word; prefix >> word;) {
    for (size_t at; (at = word.find("{host}")) != std::string::npos;) word.replace(at, 6, host);
    c.argv.push_back(word);
  }
  c.argv.push_back(job.self);
  c.argv.push_back(type == "ps" ? "ps" : "worker");
  // The launcher sets these itself; a task's place comes from TF_CONFIG.
  const std::vector<std::string> own = {"checkpoint",   "output_dir", "auth_token_file",
                                        "cluster_spec", "ps_hosts",   "worker_hosts",
                                        "job_name",     "task_index",   "metrics_port"};
  for (const std::string& a : ForwardedFlags(flags, type == "ps" ? kPs : kWorker, own))
    c.argv.push_back(a);
  for (const std::string& a : extra) c.argv.push_back(a);
  if (const int64_t base = flags.GetInt("metrics_port"); base > 0) {
    c.argv.push_back("--metrics_port=" + std::to_string(base + MetricsPortOffset(spec, type, index)));
  }
  c.argv.push_back("--checkpoint=" + job.folder);
  c.argv.push_back("--auth_token_file=" + job.token_file);
  ClusterSpec task = spec;
  task.task_type = type;
  task.task_index = index;
  c.env.push_back("TF_CONFIG=" + ClusterJson(task));
  c.log_path = (std::filesystem::path(job.folder) / "logs" / (c.name + ".log")).string();
  return c;
}

}  // namespace deepfm::launcher

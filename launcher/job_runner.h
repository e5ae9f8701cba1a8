// Runs the tasks of one job and watches them until it ends:
//   start every shard, and wait until each one's gRPC health service says
//   SERVING (readiness comes from there, never from output);
//   start every trainer;
//   until every trainer has exited: a task that dies, a trainer the chief
//   shard's JobStatus shows failed or stuck for --hang_timeout, or a stop
//   signal ends the job, naming the cause and stopping every task;
//   then stop the shards in order and read the chief's metrics.json.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/cluster_spec.h"
#include "common/timing.h"
#include "launcher/flag_set.h"
#include "launcher/supervisor.h"
#include "launcher/task_command.h"
#include "rpc/security.h"
#include "worker/ps_client.h"

namespace deepfm::launcher {

class JobRunner {
 public:
  // `stop_signal` is set (to the signal) by the launcher's signal handler.
  JobRunner(const FlagSet& flags, JobPaths paths, ClusterSpec spec, rpc::Security security,
            const std::atomic<int>* stop_signal);
  // The process exit code: 0 on success, 130 after a stop signal, else 1.
  int Run();

 private:
  struct Task {
    std::string name;  // "ps:1", "worker:0", "chief:0"
    std::string address;
    int child = -1;
  };

  Status Spawn(const std::string& type, int index, const std::string& address,
               std::vector<Task>* into);
  Status StartShards();
  Status StartTrainers();
  int Supervise();
  void StopShards();
  int Summarize();
  const Task& TaskOf(int child) const;
  std::string TailOf(int child) const;
  int Fail(const std::string& why, int child, bool tail_included = false);

  const FlagSet& flags_;
  const JobPaths paths_;
  const std::string folder_;
  const ClusterSpec spec_;
  const rpc::Security security_;
  const std::atomic<int>* stop_signal_;
  Supervisor sup_;
  std::vector<Task> shards_, trainers_;
  std::unique_ptr<PsClient> status_client_;
  Stopwatch wall_;
};

}  // namespace deepfm::launcher

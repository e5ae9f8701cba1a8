// Runs the tasks of one job and watches them until it ends:
//   start every shard, and wait until each one's gRPC health service says
//   SERVING (readiness comes from there, never from output);
//   start every trainer;
//   until every trainer has exited: a task that dies, a trainer the chief
//   shard's JobStatus shows failed or stuck for --hang_timeout, or a stop
//   signal ends the job, naming the cause and stopping every task;
//   then stop the shards in order and read the chief's metrics.json.
//
// Recovery, up to --max_restarts times: a task that crashes (a signal, or
// the "temporary" exit code: a peer died) is restarted rather than ending
// the job. A trainer that dies while every shard is alive is restarted
// alone and rejoins the live shards where its last applied push left off.
// When a shard dies, every task is stopped and started again, and the
// shards restore the newest checkpoint that verifies. A task that refused
// to run (exit 1: a corrupt checkpoint, a changed layout) or was given bad
// flags (exit 2) ends the job at once: a restart would fail the same way.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/cluster_spec.h"
#include "common/timing.h"
#include "launcher/flag_set.h"
#include "launcher/progress_bar.h"
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

  // What Supervise saw end the job's current run.
  struct Death {
    std::string why;
    int child = -1;
    bool restartable = false;
    int trainer = -1;  // the trainers_ entry to restart alone, or -1: the whole job
  };
  static constexpr int kRestart = -1;

  Status Spawn(const std::string& type, int index, const std::string& address,
               std::vector<Task>* into, const std::vector<std::string>& extra = {});
  Status StartShards(const std::vector<std::string>& extra = {});
  Status StartTrainers(const std::vector<std::string>& extra = {});
  // 0 when every trainer succeeded, kRestart with *death set, or an exit code.
  int Supervise(Death* death);
  bool ShardsAlive();
  // Prints, once, that training resumed after the last restart, when
  // `status` (shard 0's JobStatus) shows it.
  void ReportTrainingAgain(const ps::JobStatusResponse& status);
  Status RestartTrainer(const Death& death);
  Status RestartJob(const Death& death);
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
  // The status line on a terminal (inactive elsewhere).
  std::unique_ptr<ProgressBar> bar_;
  void StartProgressBar();
  Stopwatch wall_;
  size_t finished_ = 0;            // trainers that exited 0 in this run
  int restarts_ = 0;
  int64_t last_step_ = 0;          // the chief shard's step at the last JobStatus
  int64_t restarted_at_ = 0;       // NowNanos() of the last restart; 0: none pending
  int64_t restored_step_ = 0;      // the step the last restart resumed from
  int restarted_trainer_ = -1;     // the trainer restarted alone, or -1: the whole job
  std::string latest_at_start_;    // the job folder's latest checkpoint when the job began
};

// Prints the job's result from the chief's metrics.json in `folder`; returns
// 0, or 1 (saying why) when there is none.
int PrintJobResult(const std::string& folder, double wall_seconds);

// The global steps a job will take, for the progress bar: --steps, else the
// data's rows times --num_epochs over --batch_size; 0 when unknown.
int64_t ExpectedSteps(const FlagSet& flags);

}  // namespace deepfm::launcher

#include "launcher/job_runner.h"

#include <unistd.h>

#include <cmath>

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "common/checkpoint_manifest.h"
#include "common/exit_codes.h"
#include "common/report.h"
#include "launcher/job_flags.h"
#include "obs/job_report.h"
#include "rpc/health.h"
#include "rpc/job_status.h"

namespace deepfm::launcher {

JobRunner::JobRunner(const FlagSet& flags, JobPaths paths, ClusterSpec spec, rpc::Security security,
                     const std::atomic<int>* stop_signal)
    : flags_(flags),
      paths_(std::move(paths)),
      folder_(paths_.folder),
      spec_(std::move(spec)),
      security_(std::move(security)),
      stop_signal_(stop_signal) {}

void JobRunner::StartProgressBar() {
  if (!isatty(STDERR_FILENO)) return;
  bar_ = std::make_unique<ProgressBar>(STDERR_FILENO, ExpectedSteps(flags_),
                                       flags_.GetInt("batch_size"));
  sup_.SetOutputHooks([this] { bar_->Clear(); }, [this] { bar_->Redraw(); });
}

int JobRunner::Run() {
  if (!LatestCheckpoint(folder_, &latest_at_start_).ok()) latest_at_start_.clear();
  StartProgressBar();
  Status s = StartShards();
  if (s.ok()) s = StartTrainers();
  if (!s.ok()) return Fail(s.message(), -1, /*tail_included=*/true);
  const int max_restarts = static_cast<int>(flags_.GetInt("max_restarts"));
  while (true) {
    Death death;
    const int code = Supervise(&death);
    if (bar_) {
      // What follows prints; a restart's next reading draws the bar again.
      if (code == kRestart) {
        bar_->Clear();
      } else {
        bar_->Done();
      }
    }
    if (code != kRestart) {
      if (code != 0) return code;
      break;
    }
    if (!death.restartable) return Fail(death.why, death.child);
    if (restarts_ >= max_restarts) {
      return Fail(death.why + "; not restarting: --max_restarts=" + std::to_string(max_restarts) +
                      " restarts are used up",
                  death.child);
    }
    ++restarts_;
    s = death.trainer >= 0 ? RestartTrainer(death) : RestartJob(death);
    if (!s.ok()) return Fail(s.message(), -1, /*tail_included=*/true);
  }
  StopShards();
  return Summarize();
}

bool JobRunner::ShardsAlive() {
  for (const Task& t : shards_) {
    if (!sup_.running(t.child)) return false;
    if (!rpc::WaitForServing(t.address, security_, std::chrono::seconds(2), [] { return true; })
             .ok()) {
      return false;
    }
  }
  return true;
}

Status JobRunner::RestartTrainer(const Death& death) {
  Task& t = trainers_[death.trainer];
  const size_t colon = t.name.find(':');
  const std::string type = t.name.substr(0, colon);
  const int index = std::stoi(t.name.substr(colon + 1));
  fprintf(stderr,
          "deepfm: %s; the shards are alive, so %s restarts alone and rejoins them where its "
          "last applied push left off (restart %d of %lld)\n",
          death.why.c_str(), t.name.c_str(), restarts_,
          static_cast<long long>(flags_.GetInt("max_restarts")));
  Status s = sup_.Spawn(TaskCommand(flags_, spec_, type, index, paths_), &t.child);
  if (!s.ok()) return Internal("restarting " + t.name + ": " + s.message());
  restarted_at_ = NowNanos();
  restored_step_ = last_step_;
  restarted_trainer_ = death.trainer;
  return Status::Ok();
}

Status JobRunner::RestartJob(const Death& death) {
  const int64_t started = NowNanos();
  fprintf(stderr,
          "deepfm: %s; restarting every task from the newest good checkpoint (restart %d of "
          "%lld)\n",
          death.why.c_str(), restarts_, static_cast<long long>(flags_.GetInt("max_restarts")));
  // The step the job reached, fresh from shard 0 if it still answers (the
  // supervision loop only polls it once a second).
  ps::JobStatusResponse now;
  if (status_client_ && status_client_->JobStatus(&now).ok()) last_step_ = now.global_step();
  sup_.StopAll(5000);
  shards_.clear();
  trainers_.clear();
  status_client_.reset();
  finished_ = 0;
  std::string pointer, latest;
  if (!LatestCheckpoint(folder_, &pointer).ok()) pointer.clear();
  // Until this job commits a checkpoint of its own, a user's
  // --restore_checkpoint still names where it resumes from; after that, the
  // newest good checkpoint does.
  const bool saved_since_start = pointer != latest_at_start_;
  const std::string user_restore = flags_.Get("restore_checkpoint");
  if (!saved_since_start && !user_restore.empty()) {
    latest = (std::filesystem::path(folder_) / user_restore).string();
  } else if (!FindNewestGoodCheckpoint(folder_, &latest).ok()) {
    latest.clear();
  }
  Manifest m;
  if (!latest.empty() && ReadAndVerifyManifest(latest, &m).ok()) {
    restored_step_ = m.global_step;
    fprintf(stderr,
            "deepfm: restoring %s (step %lld); the job was at step %lld, so %lld steps are "
            "trained again\n",
            latest.c_str(), static_cast<long long>(m.global_step), static_cast<long long>(last_step_),
            static_cast<long long>(std::max<int64_t>(0, last_step_ - m.global_step)));
  } else {
    restored_step_ = 0;
    fprintf(stderr,
            "deepfm: no checkpoint that verifies yet: the job starts over from step 0 (it was at "
            "step %lld)\n",
            static_cast<long long>(last_step_));
  }
  // A damaged newest checkpoint is not a reason to give up here: the
  // shards fall back to the newest one that verifies, and say so.
  std::vector<std::string> ps_flags = {"--fall_back_to_good_checkpoint"};
  if (saved_since_start) ps_flags.push_back("--restore_checkpoint=");
  Status s = StartShards(ps_flags);
  if (s.ok()) s = StartTrainers();
  if (!s.ok()) return s;
  restarted_at_ = started;
  restarted_trainer_ = -1;
  return Status::Ok();
}

Status JobRunner::Spawn(const std::string& type, int index, const std::string& address,
                        std::vector<Task>* into, const std::vector<std::string>& extra) {
  Task t{type + ":" + std::to_string(index), address, -1};
  Status s = sup_.Spawn(TaskCommand(flags_, spec_, type, index, paths_, extra), &t.child);
  if (!s.ok()) return Internal("starting " + t.name + ": " + s.message());
  into->push_back(t);
  return Status::Ok();
}

Status JobRunner::StartShards(const std::vector<std::string>& extra) {
  for (size_t i = 0; i < spec_.ps.size(); ++i) {
    Status s = Spawn("ps", static_cast<int>(i), spec_.ps[i], &shards_, extra);
    if (!s.ok()) return s;
  }
  // Ready means serving: the standard health check, not a printed line.
  std::map<int, int> exited;  // child -> wait status
  for (const Task& t : shards_) {
    Status s = rpc::WaitForServing(t.address, security_, std::chrono::seconds(120), [&] {
      sup_.Pump(0);
      for (auto [child, st] : sup_.Reap()) exited[child] = st;
      return !exited.count(t.child) && !*stop_signal_;
    });
    if (*stop_signal_) return Status(Code::kUnavailable, "interrupted");
    if (!exited.empty()) {
      const Task& dead = TaskOf(exited.begin()->first);
      sup_.Pump(0);
      return Status(Code::kUnavailable,
                    dead.name + " (" + dead.address + ") exited during start-up (" +
                        DescribeExit(exited.begin()->second) + ")" + TailOf(dead.child));
    }
    if (!s.ok()) {
      return Status(Code::kUnavailable, t.name + " (" + t.address + ") did not become ready: " +
                                            s.message() + TailOf(t.child));
    }
  }
  return Status::Ok();
}

Status JobRunner::StartTrainers(const std::vector<std::string>& extra) {
  for (size_t i = 0; i < spec_.chief.size(); ++i) {
    Status s = Spawn("chief", static_cast<int>(i), spec_.chief[i], &trainers_, extra);
    if (!s.ok()) return s;
  }
  for (size_t i = 0; i < spec_.worker.size(); ++i) {
    Status s = Spawn("worker", static_cast<int>(i), spec_.worker[i], &trainers_, extra);
    if (!s.ok()) return s;
  }
  PsClientOptions co;
  co.hosts = spec_.ps;
  co.security = security_;
  co.rpc_deadline_ms = 5000;
  co.connect_timeout_ms = 30000;
  co.max_retries = 0;
  return PsClient::Connect(co, &status_client_);
}

// Until every trainer has exited: a non-zero exit, a dead shard, a hung
// trainer or a stop signal ends the run. Returns 0 when all trainers
// succeeded, kRestart with *death describing a task that died, or the exit
// code.
int JobRunner::Supervise(Death* death) {
  const double hang_timeout = static_cast<double>(flags_.GetInt("hang_timeout"));
  int64_t next_check = NowNanos();
  while (finished_ < trainers_.size()) {
    sup_.Pump(200);
    if (finished_ + 1 >= trainers_.size() && restarted_at_ != 0) {
      // A restarted trainer may finish its share before the once-a-second
      // check below sees it train: look now, while shard 0 still answers.
      ps::JobStatusResponse status;
      if (status_client_ && status_client_->JobStatus(&status).ok()) ReportTrainingAgain(status);
    }
    for (auto [child, st] : sup_.Reap()) {
      const Task& t = TaskOf(child);
      const bool trainer = &t >= trainers_.data() && &t < trainers_.data() + trainers_.size();
      if (trainer && WIFEXITED(st) && WEXITSTATUS(st) == kExitOk) {
        ++finished_;
        continue;
      }
      death->why = t.name + " (" + t.address + ") died (" + DescribeExit(st) + ") at about step " +
                   std::to_string(last_step_);
      death->child = child;
      // A crash, or a task that lost a peer, may well succeed when
      // restarted; a task that refused its configuration would not.
      death->restartable = WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == kExitTemporary);
      death->trainer = -1;
      if (death->restartable && trainer && ShardsAlive()) {
        death->trainer = static_cast<int>(&t - trainers_.data());
      }
      sup_.Pump(0);
      return kRestart;
    }
    if (*stop_signal_) {
      if (bar_) bar_->Done();
      fprintf(stderr, "deepfm: signal %d: stopping every task\n", stop_signal_->load());
      sup_.StopAll(5000);
      return 130;
    }
    if (NowNanos() >= next_check) {
      // A progress bar on a terminal reads the step four times a second.
      next_check = NowNanos() + (bar_ && bar_->active() ? 250000000LL : 1000000000LL);
      ps::JobStatusResponse status;
      // An unreachable chief shard shows up as its process dying, or as
      // the trainers failing; here it only postpones the check.
      if (status_client_ && status_client_->JobStatus(&status).ok()) {
        last_step_ = status.global_step();
        if (bar_) {
          const bool has_loss = status.workers_size() > 0 && status.workers(0).has_last_loss();
          bar_->Update(status.global_step(), has_loss ? status.workers(0).last_loss() : NAN);
        }
        ReportTrainingAgain(status);
        // A trainer restarted alone shows its predecessor's stale heartbeat
        // (or FAILED) until its own first one arrives.
        const bool settling = restarted_at_ != 0 && NowNanos() - restarted_at_ < 15000000000LL;
        const rpc::StuckTrainer stuck = rpc::FindStuckTrainer(status, hang_timeout);
        if (!settling && stuck.found() && stuck.index < static_cast<int>(trainers_.size())) {
          const Task& t = trainers_[stuck.index];
          return Fail(t.name + " (" + t.address + ") stopped the job: " + stuck.why, t.child);
        }
      }
    }
  }
  return 0;
}

void JobRunner::ReportTrainingAgain(const ps::JobStatusResponse& status) {
  if (restarted_at_ == 0) return;
  // After a job restart, the step moves past the restored one; after a lone
  // restart, the new process has reported steps of its own (a heartbeat
  // newer than the restart). Seen here within about a second.
  bool again = false;
  const double since_restart = (NowNanos() - restarted_at_) * 1e-9;
  if (restarted_trainer_ < 0) {
    again = status.global_step() > restored_step_;
  } else if (restarted_trainer_ < status.workers_size()) {
    const ps::WorkerStatus& w = status.workers(restarted_trainer_);
    again = w.seconds_since_heartbeat() < since_restart && w.local_step() > 0;
  }
  if (!again) return;
  if (bar_) bar_->Clear();
  printf("deepfm: training again %.1f s after the failure, at step %lld\n", since_restart,
         static_cast<long long>(status.global_step()));
  fflush(stdout);
  restarted_at_ = 0;
}

void JobRunner::StopShards() {
  // Trainers are done: stop the shards in order (SIGTERM -> graceful shutdown).
  for (const Task& t : shards_) sup_.Signal(t.child, SIGTERM);
  const int64_t deadline = NowNanos() + 30LL * 1000000000;
  size_t left = shards_.size();
  while (left > 0 && NowNanos() < deadline) {
    sup_.Pump(100);
    for (auto [child, st] : sup_.Reap()) {
      --left;
      if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "deepfm: %s stopped with %s\n", TaskOf(child).name.c_str(),
                DescribeExit(st).c_str());
      }
    }
  }
  sup_.StopAll(1000);
}

int JobRunner::Summarize() { return PrintJobResult(folder_, wall_.Seconds()); }

int64_t ExpectedSteps(const FlagSet& flags) {
  const int64_t batch = flags.GetInt("batch_size");
  int64_t total = flags.GetInt("steps");
  std::string train, eval;
  if (total <= 0 && FindDataFiles(flags.Get("data_location"), false, &train, &eval).ok()) {
    // One pass is about rows / batch global steps (each trainer's last batch
    // may be short); the bar says "step N" without a total otherwise.
    total = (CountRows(train) * flags.GetInt("num_epochs") + batch - 1) / batch;
  }
  return std::max<int64_t>(total, 0);
}

int PrintJobResult(const std::string& folder, double wall_seconds) {
  JobMetrics m;
  const std::string path = (std::filesystem::path(folder) / "metrics.json").string();
  Status s = ReadJobMetrics(path, &m);
  if (!s.ok()) {
    fprintf(stderr, "deepfm: the chief's metrics: %s\n", s.message().c_str());
    return 1;
  }
  printf("deepfm: done in %.1f s: %.0f samples/s over %d worker(s)", wall_seconds,
         m.samples_per_sec(), m.workers);
  if (m.has_eval) {
    printf("; eval AUC %.4f logloss %.4f accuracy %.4f", m.eval.auc, m.eval.logloss,
           m.eval.accuracy);
  }
  printf("\ndeepfm: metrics in %s\n", path.c_str());
  // The report is for people; a job that trained never fails over it.
  const std::string report = (std::filesystem::path(folder) / "report.html").string();
  s = obs::WriteReport({folder}, report);
  if (s.ok()) {
    printf("deepfm: report in %s\n", report.c_str());
  } else {
    fprintf(stderr, "deepfm: no report: %s\n", s.message().c_str());
  }
  return 0;
}

const JobRunner::Task& JobRunner::TaskOf(int child) const {
  for (const auto* list : {&shards_, &trainers_}) {
    for (const Task& t : *list) {
      if (t.child == child) return t;
    }
  }
  static const Task unknown{"?", "?", -1};
  return unknown;
}

std::string JobRunner::TailOf(int child) const {
  return child >= 0 ? "; its last lines:\n" + sup_.Tail(child) : "";
}

int JobRunner::Fail(const std::string& why, int child, bool tail_included) {
  const std::string tail = tail_included ? "" : TailOf(child);
  fprintf(stderr, "deepfm: %s%s\n", why.c_str(), tail.c_str());
  sup_.StopAll(5000);
  fprintf(stderr, "deepfm: job failed; logs in %s\n",
          (std::filesystem::path(folder_) / "logs").c_str());
  return 1;
}

}  // namespace deepfm::launcher

#include "ps/job_coordinator.h"

namespace deepfm::ps {
namespace {

double Seconds(JobCoordinator::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

JobCoordinator::JobCoordinator(uint32_t num_trainers, Clock::time_point start)
    : num_trainers_(num_trainers), start_(start), trainers_(num_trainers) {}

Status JobCoordinator::Find(uint32_t task_index, const char* rpc, Trainer** out) {
  if (num_trainers_ > 0 && task_index >= num_trainers_) {
    return InvalidArgument(std::string(rpc) + ": task_index " + std::to_string(task_index) +
                           " is outside this job's " + std::to_string(num_trainers_) + " trainers");
  }
  if (task_index >= trainers_.size()) {
    if (task_index >= 1u << 16) {
      return InvalidArgument(std::string(rpc) + ": task_index " + std::to_string(task_index) +
                             " is implausible");
    }
    trainers_.resize(task_index + 1);
  }
  *out = &trainers_[task_index];
  return Status::Ok();
}

Status JobCoordinator::Heartbeat(const HeartbeatRequest& req, Clock::time_point now) {
  if (!WorkerPhase_IsValid(req.phase()) || req.phase() == PHASE_UNKNOWN) {
    return InvalidArgument("heartbeat: phase " + std::to_string(req.phase()) + " is not a phase");
  }
  if (req.progress() < 0 || req.local_step() < 0) {
    return InvalidArgument("heartbeat: progress and local_step must be >= 0");
  }
  std::lock_guard<std::mutex> lock(mu_);
  Trainer* t = nullptr;
  Status s = Find(req.task_index(), "heartbeat", &t);
  if (!s.ok()) return s;
  if (!t->heard || req.progress() != t->progress || req.phase() != t->phase) t->last_progress = now;
  t->heard = true;
  t->phase = req.phase();
  t->progress = req.progress();
  t->local_step = req.local_step();
  t->has_loss = req.has_last_loss();
  t->last_loss = req.last_loss();
  t->last_heartbeat = now;
  return Status::Ok();
}

Status JobCoordinator::WorkerDone(uint32_t task_index, uint32_t* done) {
  std::lock_guard<std::mutex> lock(mu_);
  Trainer* t = nullptr;
  Status s = Find(task_index, "WorkerDone", &t);
  if (!s.ok()) return s;
  t->done = true;
  *done = 0;
  for (const Trainer& x : trainers_) *done += x.done;
  return Status::Ok();
}

void JobCoordinator::Describe(JobStatusResponse* resp, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  resp->set_num_workers(num_trainers_ > 0 ? num_trainers_
                                          : static_cast<uint32_t>(trainers_.size()));
  for (size_t i = 0; i < trainers_.size(); ++i) {
    const Trainer& t = trainers_[i];
    WorkerStatus* w = resp->add_workers();
    w->set_task_index(static_cast<uint32_t>(i));
    w->set_phase(t.phase);
    w->set_progress(std::max<int64_t>(t.progress, 0));
    w->set_local_step(t.local_step);
    if (t.has_loss) w->set_last_loss(t.last_loss);
    w->set_done(t.done);
    w->set_seconds_since_heartbeat(Seconds(now - (t.heard ? t.last_heartbeat : start_)));
    w->set_seconds_since_progress(Seconds(now - (t.heard ? t.last_progress : start_)));
  }
}

}  // namespace deepfm::ps

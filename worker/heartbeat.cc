#include "worker/heartbeat.h"

#include <cmath>

#include <glog/logging.h>

namespace deepfm {

HeartbeatSender::HeartbeatSender(PsClient* client, uint32_t task_index,
                                 const TrainerProgress* progress,
                                 std::chrono::milliseconds interval)
    : client_(client), task_index_(task_index), progress_(progress), interval_(interval) {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      SendOnce();
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stop_; });
    }
  });
}

HeartbeatSender::~HeartbeatSender() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  SendOnce();
}

void HeartbeatSender::SendOnce() {
  ps::HeartbeatRequest req;
  req.set_task_index(task_index_);
  req.set_phase(static_cast<ps::WorkerPhase>(progress_->phase.load(std::memory_order_relaxed)));
  req.set_progress(progress_->progress.load(std::memory_order_relaxed));
  req.set_local_step(progress_->local_step.load(std::memory_order_relaxed));
  const double loss = progress_->last_loss.load(std::memory_order_relaxed);
  if (!std::isnan(loss)) req.set_last_loss(loss);
  Status s = client_->Heartbeat(req);
  if (s.ok()) {
    failures_ = 0;
    sent_.fetch_add(1);
  } else if (failures_++ % 30 == 0) {
    // Training fails on its own if the chief shard is really gone; this only says why
    // the launcher may call this trainer silent.
    LOG(WARNING) << "heartbeat to the chief shard failed: " << s.message();
  }
}

}  // namespace deepfm

// A trainer's liveness: the trainer advances a TrainerProgress as it works,
// and a HeartbeatSender thread reports it to the chief shard about once a
// second. Heartbeats that stop mean a dead or frozen trainer; heartbeats
// whose progress stands still mean a stuck one (rpc::FindStuckTrainer).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <thread>

#include "common/thread_annotations.h"
#include "proto/ps.pb.h"
#include "worker/ps_client.h"

namespace deepfm {

struct TrainerProgress {
  std::atomic<int> phase{ps::STARTING};
  std::atomic<int64_t> progress{0};  // advanced per step and per evaluation batch
  std::atomic<int64_t> local_step{0};
  std::atomic<double> last_loss{std::numeric_limits<double>::quiet_NaN()};  // NaN: no step yet

  void Enter(ps::WorkerPhase p) { phase.store(p, std::memory_order_relaxed); }
  void Advance() { progress.fetch_add(1, std::memory_order_relaxed); }
};

class HeartbeatSender {
 public:
  // Starts sending at once, then every `interval`, until destroyed (which
  // sends one last heartbeat with the final phase).
  HeartbeatSender(PsClient* client, uint32_t task_index, const TrainerProgress* progress,
                  std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  ~HeartbeatSender();
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;

  int64_t sent() const { return sent_.load(); }

 private:
  void SendOnce();

  PsClient* client_;
  const uint32_t task_index_;
  const TrainerProgress* progress_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ DEEPFM_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> sent_{0};
  int failures_ = 0;  // consecutive; only the sender thread touches it
  std::thread thread_;
};

}  // namespace deepfm

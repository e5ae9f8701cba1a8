// What a shard knows of the job's trainers: their heartbeats and who has
// finished training. Shard 0's copy is the one that matters (every trainer
// reports there); the others stay empty. Times come from the steady clock of
// the shard's own machine, so no clocks need to agree.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/ps.pb.h"

namespace deepfm::ps {

class JobCoordinator {
 public:
  using Clock = std::chrono::steady_clock;
  // num_trainers: trainers in the job (chief included); 0 accepts any index
  // (a shard started without a cluster spec, as the unit tests do).
  explicit JobCoordinator(uint32_t num_trainers, Clock::time_point start = Clock::now());

  // Records a heartbeat; an index outside the job is INVALID_ARGUMENT.
  Status Heartbeat(const HeartbeatRequest& req, Clock::time_point now = Clock::now());
  // Marks a trainer done; *done gets how many distinct ones are.
  Status WorkerDone(uint32_t task_index, uint32_t* done);
  // One entry per trainer, including those never heard from.
  void Describe(JobStatusResponse* resp, Clock::time_point now = Clock::now()) const;

 private:
  struct Trainer {
    bool heard = false;
    bool done = false;
    WorkerPhase phase = PHASE_UNKNOWN;
    int64_t progress = -1;
    int64_t local_step = 0;
    bool has_loss = false;
    double last_loss = 0;
    Clock::time_point last_heartbeat;
    Clock::time_point last_progress;
  };
  // The trainer's entry, or INVALID_ARGUMENT for an index outside the job.
  Status Find(uint32_t task_index, const char* rpc, Trainer** out) DEEPFM_REQUIRES(mu_);

  const uint32_t num_trainers_;
  const Clock::time_point start_;
  mutable std::mutex mu_;
  // One per trainer; grows on demand when num_trainers_ is 0.
  std::vector<Trainer> trainers_ DEEPFM_GUARDED_BY(mu_);
};

}  // namespace deepfm::ps

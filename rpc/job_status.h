// Reading the chief shard's JobStatus: which trainer, if any, looks stuck.
// Shared by the chief (waiting for the others) and the launcher.
#pragma once

#include <string>

#include "proto/ps.pb.h"

namespace deepfm::rpc {

// The first trainer in `status` that failed or looks stuck after
// `timeout_s`, if any. Failed: its
// last heartbeat said FAILED. Stuck: not done, and either no
// heartbeat for that long (dead, frozen, or never started) or heartbeats
// without progress for that long in a phase that should progress (a chief
// waiting for the others is not stuck).
struct StuckTrainer {
  int index = -1;   // the trainer's task_index; -1: none
  std::string why;  // a sentence naming it
  bool found() const { return index >= 0; }
};
StuckTrainer FindStuckTrainer(const ps::JobStatusResponse& status, double timeout_s);

}  // namespace deepfm::rpc

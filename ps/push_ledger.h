// PushLedger: a retried push changes a shard at most once.
//
// A worker retries a push after UNAVAILABLE, but the first attempt may have
// been applied and only its response lost. Each push carries the worker
// process's random session id and a sequence number that grows by one per
// push; a worker has at most one push in flight per shard, so remembering
// each trainer's newest (session, seq) is enough to know a retry.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "common/thread_annotations.h"

namespace deepfm::ps {

class PushLedger {
 public:
  enum class Verdict {
    kApply,       // new: apply it, then call Done or Forget
    kDuplicate,   // applied before: answer with *step, change nothing
    kInProgress,  // the first attempt is still being applied: retry later
  };

  // Session 0 (a client that sends no id) is always kApply. A new session
  // for the same trainer (a restarted process) replaces the old one.
  Verdict Begin(uint32_t task, uint64_t session, uint64_t seq, int64_t* step);
  // The push was applied as `step`.
  void Done(uint32_t task, uint64_t session, uint64_t seq, int64_t step);
  // The push was refused before it changed anything: a retry may apply it.
  void Forget(uint32_t task, uint64_t session, uint64_t seq);

 private:
  struct Entry {
    uint64_t session = 0;
    uint64_t seq = 0;
    uint64_t prev_seq = 0;   // restored by Forget
    int64_t step = 0;        // of seq, once applied
    bool applying = false;
  };
  std::mutex mu_;
  std::unordered_map<uint32_t, Entry> entries_ DEEPFM_GUARDED_BY(mu_);
};

}  // namespace deepfm::ps

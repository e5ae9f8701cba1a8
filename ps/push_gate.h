// PushGate: orders one shard's pushes around snapshot cuts, so a checkpoint
// holds every shard at the same global step S (DESIGN.md §9).
//
// Shard 0 numbers the steps: a push with an increment gets the next step.
// The other shards apply pushes carrying the step shard 0 gave them, in any
// order; each tracks which steps it has applied, so it knows when every step
// up to S is in.
//
// A cut at S runs the cut function with no push in flight and exactly the
// steps <= S applied:
// - on shard 0, CutNow() waits for the pushes in flight and cuts at S = the
//   last step it numbered;
// - on another shard, the cut becomes pending when a push carries it (shard
//   0 stamps S on every later step it numbers, and workers forward it) or
//   when AwaitCut(S) asks. From then on a push beyond S waits, and the cut
//   is taken as soon as the last step <= S has been applied.
//
// A step <= S that never arrives (its worker died between its pushes to
// shard 0 and this shard) would hold pushes forever; after hold_timeout the
// pending cut is abandoned, held pushes go on, and AwaitCut reports which
// step was missing. Cuts happen one at a time: the chief saves one
// checkpoint after another.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace deepfm::ps {

class PushGate {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs with no push in flight and none admitted until it returns; it must
  // not call back into the gate.
  using CutFn = std::function<void(int64_t step)>;

  PushGate(bool numbers_steps, CutFn cut, std::chrono::milliseconds hold_timeout);

  // A restore: the shard holds every step up to `step`.
  void Reset(int64_t step);
  // Adds `increment` to the step (the GlobalStep RPC); returns the new step.
  int64_t Advance(int64_t increment);
  // Shard 0: the last step numbered; others: the highest step applied.
  int64_t step() const;
  // The step of the newest cut taken (0: none yet).
  int64_t last_cut() const;
  // How long the newest cut held pushes back: on shard 0 from when it
  // stopped admitting pushes (waiting for those in flight) to the end of the
  // cut; elsewhere from when the cut became pending.
  double last_cut_hold_ms() const;

  // Admits a push. On shard 0 an increment > 0 numbers it (*step = last
  // step + increment); without one it counts as max(step, carried). On
  // other shards *step = carried, `cut_hint` (shard 0's newest cut) makes
  // that cut pending, and a push beyond a pending cut waits for it. Fails
  // only when the wait outlasts hold_timeout; then nothing was admitted.
  // A cut_hint of 0 means none.
  Status Enter(int64_t carried, int64_t increment, int64_t cut_hint, int64_t* step);
  // The push admitted with `step` is done; may take a pending cut.
  void Leave(int64_t step);

  // Shard 0: cuts now and returns the cut's step.
  int64_t CutNow();
  // Cuts at `step` now, whatever has been applied: for a shard no push can
  // reach (in-process tests and tools). Returns the step.
  int64_t ForceCut(int64_t step);
  // Waits until the cut at `step` has been taken here, making it pending
  // (shard 0: it must already be taken by CutNow). Fails naming the missing
  // step if it cannot complete within `wait`.
  Status AwaitCut(int64_t step, std::chrono::milliseconds wait);

 private:
  // Takes the pending cut if it is complete and nothing is in flight.
  void MaybeCut() DEEPFM_REQUIRES(mu_);
  void TakeCut(int64_t step, Clock::time_point held_since) DEEPFM_REQUIRES(mu_);
  void Abandon() DEEPFM_REQUIRES(mu_);
  bool HeldBack(int64_t step) const DEEPFM_REQUIRES(mu_) {
    return pending_ > taken_ && step > pending_;
  }

  const bool numbers_steps_;
  const CutFn cut_;
  const std::chrono::milliseconds hold_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t counter_ DEEPFM_GUARDED_BY(mu_) = 0;   // shard 0: the last step numbered
  int64_t through_ DEEPFM_GUARDED_BY(mu_) = 0;   // others: every step <= through_ is applied
  std::set<int64_t> above_ DEEPFM_GUARDED_BY(mu_);  // others: applied steps > through_ + 1
  int64_t max_step_ DEEPFM_GUARDED_BY(mu_) = 0;
  int in_flight_ DEEPFM_GUARDED_BY(mu_) = 0;
  bool cutting_ DEEPFM_GUARDED_BY(mu_) = false;
  int64_t pending_ DEEPFM_GUARDED_BY(mu_) = -1;
  Clock::time_point pending_since_ DEEPFM_GUARDED_BY(mu_);
  int64_t taken_ DEEPFM_GUARDED_BY(mu_) = -1;  // the newest cut taken; -1: none
  int64_t abandoned_ DEEPFM_GUARDED_BY(mu_) = -1;
  std::string abandoned_why_ DEEPFM_GUARDED_BY(mu_);
  double last_hold_ms_ DEEPFM_GUARDED_BY(mu_) = 0;
};

}  // namespace deepfm::ps

#include "ps/push_ledger.h"

namespace deepfm::ps {

PushLedger::Verdict PushLedger::Begin(uint32_t task, uint64_t session, uint64_t seq,
                                      int64_t* step) {
  if (session == 0) return Verdict::kApply;
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[task];
  if (e.session == session && seq <= e.seq) {
    if (seq == e.seq && e.applying) return Verdict::kInProgress;
    // An older seq than the newest can only be a very late retry; its
    // response no longer matters to the worker, which has moved on.
    *step = seq == e.seq ? e.step : 0;
    return Verdict::kDuplicate;
  }
  if (e.session != session) e = Entry{session, 0, 0, 0, false};
  e.prev_seq = e.seq;
  e.seq = seq;
  e.step = 0;
  e.applying = true;
  return Verdict::kApply;
}

void PushLedger::Done(uint32_t task, uint64_t session, uint64_t seq, int64_t step) {
  if (session == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[task];
  if (e.session != session || e.seq != seq) return;
  e.step = step;
  e.applying = false;
}

void PushLedger::Forget(uint32_t task, uint64_t session, uint64_t seq) {
  if (session == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[task];
  if (e.session != session || e.seq != seq) return;
  e.seq = e.prev_seq;
  e.applying = false;
}

}  // namespace deepfm::ps

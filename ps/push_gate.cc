#include "ps/push_gate.h"

#include <algorithm>

namespace deepfm::ps {

PushGate::PushGate(bool numbers_steps, CutFn cut, std::chrono::milliseconds hold_timeout)
    : numbers_steps_(numbers_steps), cut_(std::move(cut)), hold_timeout_(hold_timeout) {}

void PushGate::Reset(int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  counter_ = through_ = max_step_ = step;
  above_.clear();
}

int64_t PushGate::Advance(int64_t increment) {
  std::lock_guard<std::mutex> lock(mu_);
  if (numbers_steps_) {
    counter_ += increment;
    max_step_ = std::max(max_step_, counter_);
    return counter_;
  }
  through_ = max_step_ = max_step_ + increment;
  above_.clear();
  return max_step_;
}

int64_t PushGate::step() const {
  std::lock_guard<std::mutex> lock(mu_);
  return numbers_steps_ ? counter_ : max_step_;
}

int64_t PushGate::last_cut() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::max<int64_t>(taken_, 0);
}

Status PushGate::Enter(int64_t carried, int64_t increment, int64_t cut_hint, int64_t* step) {
  std::unique_lock<std::mutex> lock(mu_);
  if (numbers_steps_) {
    cv_.wait(lock, [&] { return !cutting_; });
    // A push that is not numbered (tools, tests) still moves the step to
    // what it carries, as the shard's view of the job's step; but never to a
    // step a cut has already taken, or the snapshot would treat the rows it
    // changes as unchanged since the cut.
    if (increment > 0) {
      counter_ += increment;
    } else {
      counter_ = std::max(counter_, carried);
      if (counter_ <= taken_) counter_ = taken_ + 1;
    }
    *step = counter_;
    max_step_ = std::max(max_step_, *step);
    ++in_flight_;
    return Status::Ok();
  }
  *step = carried;
  if (cut_hint > 0 && cut_hint > taken_ && cut_hint > pending_ && cut_hint != abandoned_) {
    pending_ = cut_hint;
    pending_since_ = Clock::now();
    MaybeCut();
  }
  while (cutting_ || HeldBack(carried)) {
    if (!cutting_ && Clock::now() >= pending_since_ + hold_timeout_) {
      Abandon();
      break;
    }
    cv_.wait_until(lock, cutting_ ? Clock::now() + hold_timeout_ : pending_since_ + hold_timeout_);
  }
  ++in_flight_;
  return Status::Ok();
}

void PushGate::Leave(int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  --in_flight_;
  if (!numbers_steps_) {
    if (step == through_ + 1) {
      ++through_;
      while (!above_.empty() && *above_.begin() <= through_ + 1) {
        through_ = std::max(through_, *above_.begin());
        above_.erase(above_.begin());
      }
    } else if (step > through_) {
      above_.insert(step);
    }
    max_step_ = std::max(max_step_, step);
  }
  MaybeCut();
  cv_.notify_all();
}

void PushGate::MaybeCut() {
  if (numbers_steps_ || cutting_ || pending_ <= taken_) return;
  if (through_ < pending_ || in_flight_ > 0) return;
  // Pushes beyond the cut have been held since it became pending.
  TakeCut(pending_, pending_since_);
}

void PushGate::TakeCut(int64_t step, Clock::time_point held_since) {
  cutting_ = true;
  cut_(step);
  taken_ = step;
  last_hold_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - held_since).count();
  cutting_ = false;
  cv_.notify_all();
}

double PushGate::last_cut_hold_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_hold_ms_;
}

void PushGate::Abandon() {
  abandoned_ = pending_;
  abandoned_why_ = "the cut at step " + std::to_string(pending_) + " was abandoned after " +
                   std::to_string(hold_timeout_.count()) + " ms: step " +
                   std::to_string(through_ + 1) +
                   " never arrived here (its worker may have died between its pushes to shard 0 "
                   "and this shard)";
  pending_ = taken_;
  cv_.notify_all();
}

int64_t PushGate::CutNow() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !cutting_; });
  const Clock::time_point held_since = Clock::now();
  cutting_ = true;  // admits nothing new
  cv_.wait(lock, [&] { return in_flight_ == 0; });
  const int64_t step = numbers_steps_ ? counter_ : max_step_;
  cutting_ = false;
  TakeCut(step, held_since);
  return step;
}

int64_t PushGate::ForceCut(int64_t step) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !cutting_; });
  const Clock::time_point held_since = Clock::now();
  cutting_ = true;
  cv_.wait(lock, [&] { return in_flight_ == 0; });
  cutting_ = false;
  TakeCut(step, held_since);
  return step;
}

Status PushGate::AwaitCut(int64_t step, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  if (taken_ == step) return Status::Ok();
  if (taken_ > step) {
    return FailedPrecondition("no snapshot at step " + std::to_string(step) +
                              ": this shard has cut at step " + std::to_string(taken_) + " since");
  }
  if (numbers_steps_) {
    return FailedPrecondition("no snapshot at step " + std::to_string(step) +
                              " on shard 0: call Cut first, then Save the step it returns");
  }
  if (step > pending_) {
    pending_ = step;
    pending_since_ = Clock::now();
  }
  MaybeCut();
  const auto deadline = Clock::now() + wait;
  while (taken_ < step && abandoned_ != step) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  if (taken_ == step) return Status::Ok();
  if (abandoned_ != step && pending_ == step) Abandon();
  if (abandoned_ == step) return Status(Code::kAborted, abandoned_why_);
  return FailedPrecondition("the snapshot at step " + std::to_string(step) +
                            " was superseded by a cut at step " + std::to_string(taken_));
}

}  // namespace deepfm::ps

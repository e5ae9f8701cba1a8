#include "worker/pipeline.h"

#include <algorithm>

namespace deepfm {

void StepSync::Fail(const Status& s) {
  if (s.ok()) return;
  std::lock_guard<std::mutex> l(mu_);
  if (error_.ok()) error_ = s;
  cv_.notify_all();
}

void StepSync::Stop() {
  std::lock_guard<std::mutex> l(mu_);
  stop_ = true;
  cv_.notify_all();
}

void StepSync::PushDone(int64_t global_step) {
  std::lock_guard<std::mutex> l(mu_);
  ++pushes_done_;
  global_step_ = std::max(global_step_, global_step);
  cv_.notify_all();
}

bool StepSync::WaitForPushes(int64_t pushes) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return pushes_done_ >= pushes || stop_ || !error_.ok(); });
  return !stop_ && error_.ok();
}

bool StepSync::stopped() const {
  std::lock_guard<std::mutex> l(mu_);
  return stop_ || !error_.ok();
}

Status StepSync::error() const {
  std::lock_guard<std::mutex> l(mu_);
  return error_;
}

int64_t StepSync::global_step() const {
  std::lock_guard<std::mutex> l(mu_);
  return global_step_;
}

int64_t StepSync::pushes_done() const {
  std::lock_guard<std::mutex> l(mu_);
  return pushes_done_;
}

}  // namespace deepfm

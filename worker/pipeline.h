// The pieces a trainer's pipeline is built from (DESIGN.md §2):
//
//   prefetch stage -- ready --> compute (main thread) -- to_push --> push stage
//        ^------------------------ free steps ------------------------'
//
// Channel joins the stages. StepSync is the one place the stages share
// state: how many pushes are done, the newest global step, and the first
// error or a stop. Every change to it happens under its lock and wakes every
// waiter, so no stage can sleep through an error or a stop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace deepfm {

// A bounded blocking queue; Close() wakes every waiter, and a closed
// channel accepts nothing more but still hands out what it holds.
template <typename T>
class Channel {
 public:
  explicit Channel(size_t capacity) : capacity_(capacity) {}
  // False once closed (the value is dropped).
  bool Put(T v) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return closed_ || q_.size() < capacity_; });
    if (closed_) return false;
    q_.push_back(std::move(v));
    cv_.notify_all();
    return true;
  }
  // False when closed and empty.
  bool Get(T* v) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return closed_ || !q_.empty(); });
    if (q_.empty()) return false;
    *v = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> q_ DEEPFM_GUARDED_BY(mu_);
  bool closed_ DEEPFM_GUARDED_BY(mu_) = false;
};

class StepSync {
 public:
  explicit StepSync(int64_t global_step) : global_step_(global_step) {}

  // Records the first error (later ones are usually its consequences) and
  // wakes every waiter.
  void Fail(const Status& s);
  // Asks every stage to stop after what it is doing; wakes every waiter.
  void Stop();
  // The push of one step is applied; `global_step` is the step it got.
  void PushDone(int64_t global_step);
  // Blocks until at least `pushes` pushes are done; false if the pipeline
  // failed or stopped meanwhile.
  bool WaitForPushes(int64_t pushes);

  bool stopped() const;     // Stop() or Fail()
  Status error() const;
  int64_t global_step() const;
  int64_t pushes_done() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Status error_ DEEPFM_GUARDED_BY(mu_);
  bool stop_ DEEPFM_GUARDED_BY(mu_) = false;
  int64_t pushes_done_ DEEPFM_GUARDED_BY(mu_) = 0;
  int64_t global_step_ DEEPFM_GUARDED_BY(mu_);
};

}  // namespace deepfm

// A test-and-test-and-set spin lock for very short critical sections (one
// row's update). Table stripes are many and critical sections tiny, so
// contention is rare and a futex round trip would cost more than the work.
#pragma once

#include <atomic>
#include <thread>

namespace deepfm::ps {

class SpinLock {
 public:
  void lock() {
    for (int spins = 0;; ++spins) {
      if (!flag_.exchange(true, std::memory_order_acquire)) return;
      while (flag_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  void unlock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

}  // namespace deepfm::ps

// A shard's background sweeper: one thread that runs a pass every `poll`
// (what a pass does is the shard's: the eviction policy when it is due, the
// memory budget always) and, forced, soon after Request() (a save asks for
// one, so rows the policy drops at the cut leave the live table too).
// Polling keeps the push path free of sweeper bookkeeping. The destructor
// stops the thread and joins it; a pass in progress finishes first, and no
// pass starts after it returns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "common/thread_annotations.h"

namespace deepfm::ps {

class Sweeper {
 public:
  using Pass = std::function<void(bool forced)>;
  Sweeper(Pass pass, std::chrono::milliseconds poll);
  ~Sweeper();
  Sweeper(const Sweeper&) = delete;
  Sweeper& operator=(const Sweeper&) = delete;

  // The next pass is forced, and starts without waiting out the poll.
  void Request();

 private:
  void Loop();

  const Pass pass_;
  const std::chrono::milliseconds poll_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ DEEPFM_GUARDED_BY(mu_) = false;
  bool stop_ DEEPFM_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: it starts once the rest is set
};

}  // namespace deepfm::ps

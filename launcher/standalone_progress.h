// The progress bar of a stand-alone job (launcher/progress_bar.h), which has
// no supervisor to pass its lines through: while it lives, the process's
// stdout and stderr go through pipes, and each line the trainer (or glog)
// writes erases the bar, is written to the real stream, and redraws it. The
// bar reads shard 0's job status in-process four times a second. Off the
// terminal it does nothing at all: no pipes, no threads.
//
// A process that dies with the bar up (LOG(FATAL) or a failed CHECK, a fatal
// signal, exit() from any thread) first gives the streams back and lets the
// relays write out everything already in the pipes, partial lines too, for
// at most two seconds, so its last words reach the terminal. One bar at a
// time per process.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "launcher/progress_bar.h"
#include "ps/shard.h"

namespace deepfm::launcher {

class StandaloneProgress {
 public:
  // `shard0` must outlive this object.
  StandaloneProgress(const ps::Shard* shard0, int64_t total_steps, int64_t samples_per_step);
  // Erases the bar and gives the streams back, every line relayed.
  ~StandaloneProgress();
  StandaloneProgress(const StandaloneProgress&) = delete;
  StandaloneProgress& operator=(const StandaloneProgress&) = delete;

 private:
  // Relays what is written to `from` until its writers are gone.
  void Relay(int from, int to);
  void Poll();

  const ps::Shard* shard0_;
  bool active_ = false;
  int saved_out_ = -1, saved_err_ = -1;  // the real stdout and stderr
  std::mutex mu_;                        // the bar and the real streams
  std::unique_ptr<ProgressBar> bar_;
  std::atomic<bool> stop_{false};
  std::thread out_relay_, err_relay_, poller_;
};

}  // namespace deepfm::launcher

#include "launcher/standalone_progress.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

namespace deepfm::launcher {

namespace {

void WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Points `fd` at a new pipe's write end; returns the read end, or -1.
int Capture(int fd) {
  int p[2];
  if (pipe(p) != 0) return -1;
  dup2(p[1], fd);
  close(p[1]);
  return p[0];
}

}  // namespace

StandaloneProgress::StandaloneProgress(const ps::Shard* shard0, int64_t total_steps,
                                       int64_t samples_per_step)
    : shard0_(shard0) {
  if (!isatty(STDERR_FILENO)) return;
  fflush(stdout);
  fflush(stderr);
  saved_out_ = dup(STDOUT_FILENO);
  saved_err_ = dup(STDERR_FILENO);
  bar_ = std::make_unique<ProgressBar>(saved_err_, total_steps, samples_per_step);
  const int out = Capture(STDOUT_FILENO);
  const int err = Capture(STDERR_FILENO);
  active_ = true;
  out_relay_ = std::thread([this, out] { Relay(out, saved_out_); });
  err_relay_ = std::thread([this, err] { Relay(err, saved_err_); });
  poller_ = std::thread([this] { Poll(); });
}

StandaloneProgress::~StandaloneProgress() {
  if (!active_) return;
  stop_ = true;
  poller_.join();
  // Giving the streams back closes the pipes' write ends: the relays read
  // to the end and stop.
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out_, STDOUT_FILENO);
  dup2(saved_err_, STDERR_FILENO);
  out_relay_.join();
  err_relay_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    bar_->Done();
  }
  close(saved_out_);
  close(saved_err_);
}

void StandaloneProgress::Relay(int from, int to) {
  std::string pending;
  char buf[4096];
  for (ssize_t n; (n = read(from, buf, sizeof(buf))) > 0;) {
    pending.append(buf, static_cast<size_t>(n));
    const size_t end = pending.rfind('\n');
    if (end == std::string::npos) continue;
    std::lock_guard<std::mutex> lock(mu_);
    bar_->Clear();
    WriteAll(to, pending.data(), end + 1);
    bar_->Redraw();
    pending.erase(0, end + 1);
  }
  if (!pending.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    bar_->Clear();
    WriteAll(to, pending.data(), pending.size());
  }
  close(from);
}

void StandaloneProgress::Poll() {
  while (!stop_) {
    ps::JobStatusResponse status;
    shard0_->JobStatus(&status);
    const bool has_loss = status.workers_size() > 0 && status.workers(0).has_last_loss();
    {
      std::lock_guard<std::mutex> lock(mu_);
      bar_->Update(status.global_step(), has_loss ? status.workers(0).last_loss() : NAN);
    }
    for (int i = 0; i < 25 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace deepfm::launcher

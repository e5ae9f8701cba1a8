#include "launcher/standalone_progress.h"

#include <glog/logging.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace deepfm::launcher {

namespace {

// What a dying process needs to give the streams back, reachable from a
// signal handler: plain atomics, set while a bar is up.
std::atomic<int> g_saved_out{-1}, g_saved_err{-1};
std::atomic<int> g_relays_running{0};
std::atomic<bool> g_streams_back{true};

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction g_previous[sizeof(kFatalSignals) / sizeof(kFatalSignals[0])];

// Points stdout and stderr back at the real streams, which closes the pipes'
// write ends, and waits up to 2 s for the relays to write out the rest.
// Async-signal-safe: dup2, nanosleep and atomics only.
void GiveStreamsBack() {
  if (g_streams_back.exchange(true)) return;
  dup2(g_saved_out.load(), STDOUT_FILENO);
  dup2(g_saved_err.load(), STDERR_FILENO);
  const timespec ms{0, 1000000};
  for (int i = 0; i < 2000 && g_relays_running.load() > 0; ++i) nanosleep(&ms, nullptr);
}

void OnFatalSignal(int sig) {
  GiveStreamsBack();
  // Re-raised under the handler there was before (glog's stack dump, or the
  // default action): delivered when this one returns.
  for (size_t i = 0; i < sizeof(kFatalSignals) / sizeof(kFatalSignals[0]); ++i) {
    if (kFatalSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
  }
  raise(sig);
}

// After LOG(FATAL) has written its message (into the pipe).
[[noreturn]] void OnLogFatal() {
  fflush(stdout);
  GiveStreamsBack();
  abort();
}

// glog's own failure function.
[[noreturn]] void DefaultLogFatal() { abort(); }

void OnExit() {
  if (g_streams_back.load()) return;
  fflush(stdout);
  GiveStreamsBack();
}

void InstallDyingHooks() {
  static const bool at_exit = std::atexit(OnExit) == 0;
  (void)at_exit;
  google::InstallFailureFunction(&OnLogFatal);
  struct sigaction sa {};
  sa.sa_handler = OnFatalSignal;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof(kFatalSignals) / sizeof(kFatalSignals[0]); ++i) {
    sigaction(kFatalSignals[i], &sa, &g_previous[i]);
  }
}

void RemoveDyingHooks() {
  for (size_t i = 0; i < sizeof(kFatalSignals) / sizeof(kFatalSignals[0]); ++i) {
    sigaction(kFatalSignals[i], &g_previous[i], nullptr);
  }
  google::InstallFailureFunction(&DefaultLogFatal);
}

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
  g_saved_out = saved_out_;
  g_saved_err = saved_err_;
  g_relays_running = 2;
  g_streams_back = false;  // before the threads, which stop drawing once it is true
  out_relay_ = std::thread([this, out] { Relay(out, saved_out_); });
  err_relay_ = std::thread([this, err] { Relay(err, saved_err_); });
  poller_ = std::thread([this] { Poll(); });
  InstallDyingHooks();
}

StandaloneProgress::~StandaloneProgress() {
  if (!active_) return;
  stop_ = true;
  poller_.join();
  // Giving the streams back closes the pipes' write ends: the relays read
  // to the end and stop.
  fflush(stdout);
  fflush(stderr);
  GiveStreamsBack();
  RemoveDyingHooks();
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
    if (!g_streams_back) bar_->Redraw();  // a dying process's last lines stay last
    pending.erase(0, end + 1);
  }
  {
    // The end of the stream: the bar is left erased (a dying process's last
    // words stay last), and a partial line is written as it is.
    std::lock_guard<std::mutex> lock(mu_);
    bar_->Clear();
    WriteAll(to, pending.data(), pending.size());
  }
  close(from);
  --g_relays_running;
}

void StandaloneProgress::Poll() {
  while (!stop_) {
    ps::JobStatusResponse status;
    shard0_->JobStatus(&status);
    const bool has_loss = status.workers_size() > 0 && status.workers(0).has_last_loss();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (g_streams_back) break;
      bar_->Update(status.global_step(), has_loss ? status.workers(0).last_loss() : NAN);
    }
    for (int i = 0; i < 25 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace deepfm::launcher

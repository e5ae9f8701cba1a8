#include "ps/sweeper.h"

#include <utility>

namespace deepfm::ps {

Sweeper::Sweeper(Pass pass, std::chrono::milliseconds poll)
    : pass_(std::move(pass)), poll_(poll), thread_([this] { Loop(); }) {}

Sweeper::~Sweeper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Sweeper::Request() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    requested_ = true;
  }
  cv_.notify_all();
}

void Sweeper::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, poll_, [this]() DEEPFM_REQUIRES(mu_) { return stop_ || requested_; });
    if (stop_) break;
    const bool forced = requested_;
    requested_ = false;
    lock.unlock();
    pass_(forced);
    lock.lock();
  }
}

}  // namespace deepfm::ps

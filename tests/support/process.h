// Waiting on child processes in tests, always with a deadline.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace deepfm::testing_util {

// Waits up to `seconds` for pid to exit. On timeout it asks the process to
// stop (SIGINT: a launcher then stops its tasks), then kills it, and returns
// false: no test waits on a process without a deadline.
inline bool WaitExit(pid_t pid, double seconds, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGINT);
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid, status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return false;
}

}  // namespace deepfm::testing_util

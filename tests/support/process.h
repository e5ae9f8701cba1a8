// Waiting on child processes in tests, always with a deadline.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
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

// Starts `sh -c "exec <cmd>"` with stdout and stderr on out_fd.
inline pid_t StartShell(const std::string& cmd, int out_fd) {
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    const std::string line = "exec " + cmd;
    execl("/bin/sh", "sh", "-c", line.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

struct ShellResult {
  int exit_code = -1;  // -1: killed, timed out, or not started
  std::string output;  // stdout and stderr together
  bool timed_out = false;
};

// Runs `cmd` with its output captured, for at most timeout_s (then stopped
// as WaitExit does).
inline ShellResult RunShell(const std::string& cmd, double timeout_s) {
  ShellResult r;
  int fds[2];
  if (pipe(fds) != 0) {
    r.output = "pipe failed";
    return r;
  }
  const pid_t pid = StartShell(cmd, fds[1]);
  close(fds[1]);
  // Read on a thread so the deadline holds even if output stalls.
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) r.output.append(buf, n);
  });
  int st = 0;
  const bool exited = WaitExit(pid, timeout_s, &st);
  reader.join();  // the write end closes when the process (and its children) are gone
  close(fds[0]);
  r.timed_out = !exited;
  r.exit_code = exited && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace deepfm::testing_util

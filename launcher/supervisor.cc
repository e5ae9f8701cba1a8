#include "launcher/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/timing.h"

namespace deepfm::launcher {

Supervisor::~Supervisor() {
  StopAll(2000);
  for (auto& c : children_) {
    if (c->fd >= 0) close(c->fd);
    if (c->log) fclose(c->log);
  }
}

Status Supervisor::Spawn(const ChildSpec& spec, int* index) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  auto c = std::make_unique<Child>();
  c->spec = spec;
  if (!spec.log_path.empty()) {
    c->log = fopen(spec.log_path.c_str(), "a");
    if (!c->log) {
      close(fds[0]);
      close(fds[1]);
      return Internal("cannot open log " + spec.log_path + ": " + std::strerror(errno));
    }
  }
  std::vector<char*> argv;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // the launcher died before prctl took effect
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    // Its own process group: a terminal's Ctrl-C reaches the launcher only,
    // which then stops the children in order.
    setpgid(0, 0);
    for (const std::string& kv : spec.env) {
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
    }
    execvp(argv[0], argv.data());
    fprintf(stderr, "cannot execute %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  c->pid = pid;
  c->fd = fds[0];
  c->running = true;
  *index = static_cast<int>(children_.size());
  children_.push_back(std::move(c));
  return Status::Ok();
}

void Supervisor::EmitLine(int child, const std::string& line) {
  Child& c = *children_[child];
  if (!printed_ && before_output_) before_output_();
  printed_ = true;
  printf("[%s] %s\n", c.spec.name.c_str(), line.c_str());
  if (c.log) {
    fputs(line.c_str(), c.log);
    fputc('\n', c.log);
    fflush(c.log);
  }
  c.tail.push_back(line);
  if (c.tail.size() > kTailLines) c.tail.pop_front();
}

void Supervisor::Pump(int timeout_ms) {
  std::vector<pollfd> pfds;
  std::vector<int> owner;
  for (size_t i = 0; i < children_.size(); ++i) {
    if (children_[i]->fd >= 0) {
      pfds.push_back(pollfd{children_[i]->fd, POLLIN, 0});
      owner.push_back(static_cast<int>(i));
    }
  }
  if (pfds.empty()) {
    if (timeout_ms > 0) usleep(timeout_ms * 1000);
    return;
  }
  const int n = poll(pfds.data(), pfds.size(), timeout_ms);
  if (n <= 0) return;
  char buf[65536];
  for (size_t k = 0; k < pfds.size(); ++k) {
    if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    Child& c = *children_[owner[k]];
    const ssize_t r = read(c.fd, buf, sizeof(buf));
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      if (!c.partial.empty()) EmitLine(owner[k], c.partial);
      c.partial.clear();
      close(c.fd);
      c.fd = -1;
      continue;
    }
    c.partial.append(buf, r);
    size_t start = 0, nl;
    while ((nl = c.partial.find('\n', start)) != std::string::npos) {
      EmitLine(owner[k], c.partial.substr(start, nl - start));
      start = nl + 1;
    }
    c.partial.erase(0, start);
  }
  fflush(stdout);
  if (printed_ && after_output_) after_output_();
  printed_ = false;
}

std::vector<std::pair<int, int>> Supervisor::Reap() {
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i < children_.size(); ++i) {
    Child& c = *children_[i];
    if (!c.running) continue;
    int status = 0;
    const pid_t r = waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) {
      c.running = false;
      // Drain what the child wrote before it exited.
      while (c.fd >= 0) Pump(100);
      out.emplace_back(static_cast<int>(i), status);
    }
  }
  return out;
}

void Supervisor::Signal(int child, int sig) {
  if (children_[child]->running) kill(children_[child]->pid, sig);
}

std::string Supervisor::Tail(int child) const {
  std::string s;
  for (const std::string& l : children_[child]->tail) s += "    " + l + "\n";
  return s;
}

void Supervisor::StopAll(int grace_ms) {
  bool any = false;
  for (size_t i = 0; i < children_.size(); ++i) {
    if (children_[i]->running) {
      kill(children_[i]->pid, SIGTERM);
      any = true;
    }
  }
  if (!any) return;
  const int64_t deadline = NowNanos() + int64_t{grace_ms} * 1000000;
  while (NowNanos() < deadline) {
    Pump(50);
    Reap();
    bool left = false;
    for (auto& c : children_) left |= c->running;
    if (!left) return;
  }
  for (auto& c : children_) {
    if (c->running) {
      kill(c->pid, SIGKILL);
      int st;
      waitpid(c->pid, &st, 0);
      c->running = false;
    }
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

}  // namespace deepfm::launcher

// Supervisor: starts child processes with their stdout and stderr joined in
// one pipe, copies every line to the console prefixed by the child's name
// ("[ps0] ...") and to the child's log file, remembers each child's last lines
// for failure reports, and reaps exits. Children get SIGTERM if the launcher
// dies, so a killed launcher never leaves orphans behind. Output is for
// people: nothing is learned from it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm::launcher {

struct ChildSpec {
  std::string name;               // "ps0", "worker1"
  std::vector<std::string> argv;  // argv[0] is the program (a path, or a name looked up in PATH)
  std::vector<std::string> env;   // "NAME=value" set in the child on top of the launcher's environment
  std::string log_path;           // every output line is appended here too
};

class Supervisor {
 public:
  static constexpr size_t kTailLines = 30;

  ~Supervisor();

  Status Spawn(const ChildSpec& spec, int* index);
  // Waits up to timeout_ms for output, and prints and logs whole lines.
  void Pump(int timeout_ms);
  // Called before the first line Pump prints and after the last (the
  // progress bar's erase and redraw).
  void SetOutputHooks(std::function<void()> before, std::function<void()> after) {
    before_output_ = std::move(before);
    after_output_ = std::move(after);
  }
  // Collects children that exited since the last call: (index, wait status).
  std::vector<std::pair<int, int>> Reap();

  void Signal(int child, int sig);
  bool running(int child) const { return children_[child]->running; }
  const std::string& name(int child) const { return children_[child]->spec.name; }
  pid_t pid(int child) const { return children_[child]->pid; }
  std::string Tail(int child) const;
  size_t size() const { return children_.size(); }

  // Sends SIGTERM to every running child, waits up to grace_ms for them to
  // exit (still printing their output), then SIGKILLs the rest.
  void StopAll(int grace_ms);

 private:
  std::function<void()> before_output_, after_output_;
  bool printed_ = false;  // by the current Pump
  struct Child {
    ChildSpec spec;
    pid_t pid = -1;
    int fd = -1;  // read end of the output pipe, -1 once closed
    FILE* log = nullptr;
    std::string partial;
    std::deque<std::string> tail;
    bool running = false;
  };
  void EmitLine(int child, const std::string& line);

  std::vector<std::unique_ptr<Child>> children_;
};

// Describes a wait status: "exit code 3", "killed by signal 9 (Killed)".
std::string DescribeExit(int wait_status);

}  // namespace deepfm::launcher

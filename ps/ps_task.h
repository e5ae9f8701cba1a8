// One parameter-server task from start to exit: restore the newest
// checkpoint (if any), serve until SIGTERM/SIGINT or a Shutdown RPC, stop in
// order. `deepfm ps` parses flags and the cluster spec into these options.
#pragma once

#include <string>

#include "ps/ps_server.h"
#include "ps/shard.h"

namespace deepfm::ps {

struct PsTaskOptions {
  std::string name = "ps:0";  // how logs name this task
  ShardOptions shard;         // index, counts, optimizer
  ServerOptions server;       // bind, port, threads, security, checkpoint root
  // Restore from the newest checkpoint under server.checkpoint_root, if it
  // has one.
  bool restore = true;
};

// Returns the process exit code: 0 after an orderly stop, 1 when the task
// could not start (the reason is printed).
int RunPsTask(const PsTaskOptions& options);

}  // namespace deepfm::ps

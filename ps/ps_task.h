// One parameter-server task from start to exit: restore a checkpoint (the
// newest, or the one asked for), serve until SIGTERM/SIGINT or a Shutdown
// RPC, stop in order. `deepfm ps` parses flags and the cluster spec into these
// options.
#pragma once

#include <memory>
#include <string>
#include <vector>

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
  // A folder name ckpt-<step> under server.checkpoint_root to restore from
  // instead of the pointer's latest (--restore_checkpoint); it must verify.
  std::string restore_checkpoint;
  // When the latest checkpoint fails verification: restore the newest one
  // that verifies and say so loudly (automatic recovery), instead of
  // refusing to start with a message that names it.
  bool fall_back_to_good_checkpoint = false;
  // The Prometheus page (obs/metrics_endpoint.h) on server.bind at this
  // port, with the shard's Stats and its handlers' latency; 0: none.
  int metrics_port = 0;
  rpc::Security metrics_security;  // the token a scrape must carry (none: open)
  bool insecure = false;  // --insecure: the page may listen beyond loopback without a token
  // Every shard's host:port (the cluster spec's ps list): before serving, a
  // shard whose peers are past the step it restored refuses (ps/peer_check.h).
  // Empty: not checked.
  std::vector<std::string> peers;
};

// Restores *shard (just created, empty) as `options` ask. Sets *from to the
// folder restored and *rows to its row count; leaves *from empty when there
// is nothing to restore (no checkpoint yet, or options.restore is off).
// A latest checkpoint that fails verification is an error naming the newest
// one that verifies and the flag that resumes from it, unless
// fall_back_to_good_checkpoint; then *shard is replaced by a fresh one (the
// failed restore may have loaded part of the bad one) and the good one is
// restored into it.
Status RestoreTaskShard(const PsTaskOptions& options, std::unique_ptr<Shard>* shard,
                        std::string* from, uint64_t* rows);

// Blocks SIGTERM and SIGINT in the calling thread and in every thread it
// starts afterwards, for RunPsTask to take them in order. A process must
// call it before anything starts threads (gRPC's initialisation does):
// a thread with them unblocked would let SIGTERM kill the shard outright.
void BlockStopSignals();

// Returns the process exit code: 0 after an orderly stop, 1 when the task
// could not start (the reason is printed).
int RunPsTask(const PsTaskOptions& options);

}  // namespace deepfm::ps

// The check a shard makes after it restores and before it serves: its
// peers are not ahead of it. An engine that restarts a crashed shard alone
// (a plain Kubernetes StatefulSet does) would have it restore the newest
// checkpoint while its peers hold rows and dense values trained long past
// it: the job would go on with one shard's part of the model set back, and
// no error anywhere. Such a shard refuses to serve and says why, so the
// operator (or the engine's job-level restart) restarts every task from the
// newest good checkpoint. Peers that do not answer are starting too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "rpc/security.h"

namespace deepfm::ps {

struct PeerCheckOptions {
  std::vector<std::string> hosts;  // every shard's host:port, shard 0 first
  uint32_t self = 0;               // this shard's index in hosts
  int64_t restored_step = 0;       // the step this shard restored (0: none)
  std::string restored_from;       // the checkpoint folder, for the message
  rpc::Security security;          // the job's token and TLS, to ask the peers
  int timeout_ms = 2000;           // per peer
};

// FAILED_PRECONDITION naming the first peer whose global step is past
// restored_step, both steps, and what to do.
Status CheckPeersNotAhead(const PeerCheckOptions& options);

}  // namespace deepfm::ps

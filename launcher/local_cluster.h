// The cluster spec of a job on this machine: every task on 127.0.0.1, each on
// a port the kernel handed out free a moment before.
#pragma once

#include "common/cluster_spec.h"
#include "common/status.h"

namespace deepfm::launcher {

// Binds `n` loopback sockets at once to port 0 (so the ports are distinct),
// reads their ports and closes them. A task that then finds its port taken
// fails to start with a clear error; nothing else can go wrong quietly.
Status ReserveLoopbackPorts(int n, std::vector<int>* ports);

// ps_num shards and worker_num workers on 127.0.0.1 (worker 0 is the chief).
Status LocalClusterSpec(int ps_num, int worker_num, ClusterSpec* spec);

}  // namespace deepfm::launcher

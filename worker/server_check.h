// The check a worker makes before it trains: the servers it reached are the
// job it was told about. Each answers as the shard its place in the host list
// says, of the same shard count, and runs the optimizer and learning rate the
// worker was given (the optimizer runs on the servers, so a worker that
// disagrees would report one configuration while training another).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "proto/ps.pb.h"

namespace deepfm {

// stats[i] is the Stats answer of hosts[i]. FAILED_PRECONDITION names the
// first server that does not match, what it runs, and what was expected.
Status CheckServersMatch(const std::vector<ps::StatsResponse>& stats,
                         const std::vector<std::string>& hosts, const std::string& optimizer,
                         double learning_rate);

}  // namespace deepfm

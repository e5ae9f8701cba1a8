// `deepfm train --standalone`: DeepRec's stand-alone training. One process
// holds the trainer and --ps_num shards, which it reaches in-process
// (launcher/in_process_shards.h): no gRPC, no serialization, no token. The
// shards and the trainer are built from the same flags, by the same code,
// as the tasks of a multi-process job, so with --staleness=0 it trains
// bit for bit like a 1-shard, 1-worker gRPC job: the correctness oracle of
// the distributed path, and the measure of what the RPC layer costs.
// Checkpoints are the same files; either kind of job resumes the other's.
#pragma once

#include <string>

#include "launcher/flag_set.h"

namespace deepfm::launcher {

// Runs the job `flags` (validated; --worker_num 1) describe in `folder`, the
// job folder; returns the exit code (0, 1 on an error, 75 when a restart
// may help).
int RunStandaloneJob(const FlagSet& flags, const std::string& folder);

}  // namespace deepfm::launcher

// `deepfm train`: runs a whole job and supervises it.
//
// Without --cluster_spec the job is local: a spec for 127.0.0.1 with
// --ps_num shards and --worker_num workers. With one, the job is that spec's
// tasks, each started through --launch_prefix with its host ("ip netns exec
// {host}", "ssh {host}"). Either way every task is `deepfm ps` or `deepfm
// worker` with TF_CONFIG naming its place in the spec: one code path.
//
// The launcher learns nothing from the tasks' output (that is for people):
//   readiness  - each shard's gRPC health service answers SERVING;
//   liveness   - the chief shard's JobStatus (every trainer's heartbeats):
//                a trainer silent or stuck for --hang_timeout stops the job;
//   results    - the chief's metrics.json, through common/report.
// A task that dies, a hung trainer or Ctrl-C stops every task; the launcher
// names the cause and exits non-zero.
#pragma once

#include <string>

#include "launcher/flag_set.h"

namespace deepfm::launcher {

// Runs the job `flags` (already validated) describe; returns the exit code.
// `self` is this program's path; the tasks run it as `deepfm ps|worker`.
int RunTrainJob(const FlagSet& flags, const std::string& self);

}  // namespace deepfm::launcher

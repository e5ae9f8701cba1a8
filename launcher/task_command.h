// How the launcher starts one task of its job: `deepfm ps|worker` on the
// task's host (through --launch_prefix, "{host}" replaced), with exactly the
// flags that task reads and the user set, the job folder and token, and
// TF_CONFIG naming the task's place in the spec, as a TFJob would set it.
#pragma once

#include <string>
#include <vector>

#include "common/cluster_spec.h"
#include "launcher/flag_set.h"
#include "launcher/supervisor.h"

namespace deepfm::launcher {

struct JobPaths {
  std::string self;        // this program, as every host sees it
  std::string folder;      // the job folder (shared by every task)
  std::string token_file;  // the job's token
};

// `type` is "ps", "worker" or "chief"; `index` its place in that list.
// `extra` flags come last, so they override the user's (a job restart turns
// on the fallback to an older good checkpoint and drops a user's
// --restore_checkpoint, which named where the job's first start resumed).
// Where a task's Prometheus page goes under --metrics_port=BASE: BASE plus
// this offset, so tasks sharing a host never collide. Shards first (shard i
// at i), then the trainers in the spec's order (chief, then workers).
int MetricsPortOffset(const ClusterSpec& spec, const std::string& type, int index);

ChildSpec TaskCommand(const FlagSet& flags, const ClusterSpec& spec, const std::string& type,
                      int index, const JobPaths& job, const std::vector<std::string>& extra = {});

}  // namespace deepfm::launcher

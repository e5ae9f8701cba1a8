// The cluster spec: which tasks make up a job and which one this process is,
// in TensorFlow's shape, so the programs run unchanged under anything that
// already writes one (Kubeflow's TFJob sets TF_CONFIG; DeepRec/TF1 scripts
// pass --ps_hosts/--worker_hosts/--job_name/--task_index).
//
//   {"cluster": {"chief": ["h0:2222"], "worker": ["h1:2222"], "ps": ["h2:2222"]},
//    "task": {"type": "worker", "index": 0}}
//
// Roles: "ps" tasks are parameter-server shards, in shard order. "chief" (at
// most one) and "worker" tasks train; the chief is the "chief" task if there
// is one, else worker 0, as in TensorFlow. "master" is read as "chief" (older
// TFJobs write it). The trainers, in the order chief then workers, are
// numbered 0..N-1: that number shards the data and names reports.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm {

struct ClusterSpec {
  std::vector<std::string> chief;  // 0 or 1 address
  std::vector<std::string> worker;
  std::vector<std::string> ps;
  std::string task_type;  // "ps", "worker", "chief"; empty: no task (a launcher's view)
  int task_index = 0;

  // Tasks that train: the chief (if any) then every worker.
  int num_trainers() const { return static_cast<int>(chief.size() + worker.size()); }
  std::vector<std::string> trainers() const;
  bool is_trainer() const { return task_type == "chief" || task_type == "worker"; }
  // This task's place among the trainers; -1 for a ps task.
  int trainer_index() const;
  // True for the chief task, or for worker 0 of a job without one.
  bool is_chief() const;
  // This task's own host:port.
  std::string task_address() const;
  // "ps:1", "worker:0": how logs and errors name this task.
  std::string task_name() const;
};

// Parses a spec in TF_CONFIG's JSON shape. `origin` ("TF_CONFIG", a file
// path) prefixes every error, which also names the offending field. The
// "task" object may be absent (a launcher's spec); other top-level keys that
// TensorFlow defines ("environment", "rpc_layer") are ignored.
Status ParseClusterJson(const std::string& text, const std::string& origin, ClusterSpec* out);

// The spec in TF_CONFIG's JSON shape (with "task" when task_type is set).
std::string ClusterJson(const ClusterSpec& spec);

// Where a process finds its spec, in the order tried: the --cluster_spec
// file, the TF_CONFIG environment variable, then TF1 flags.
struct ClusterSources {
  std::string spec_file;     // --cluster_spec
  std::string tf_config;     // TF_CONFIG's value; empty when unset
  std::string ps_hosts;      // --ps_hosts, comma-separated
  std::string worker_hosts;  // --worker_hosts
  std::string job_name;      // --job_name: ps, worker or chief
  int task_index = 0;        // --task_index
};

// Reads the first source that is given and validates it (see
// ValidateClusterSpec; a task's process needs_task). *origin says which one
// it was. NotFound when none is given.
Status ResolveClusterSpec(const ClusterSources& sources, bool need_task, ClusterSpec* out,
                          std::string* origin);

// At least one ps and one trainer, at most one chief, every address a
// host:port, no address twice, and (when need_task) a task that exists.
Status ValidateClusterSpec(const ClusterSpec& spec, const std::string& origin, bool need_task);

// "host:port" (or "[v6]:port") into its parts; the port must be 1..65535.
Status SplitHostPort(const std::string& address, std::string* host, int* port);
// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

}  // namespace deepfm

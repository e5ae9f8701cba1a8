// One trainer task from start to exit: connect to every shard, check they
// are the job it was given, train, report, and (the chief) wait for the
// others, save, evaluate and write the job's metrics. `deepfm worker` parses
// flags and the cluster spec into these options.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "worker/data_reader.h"
#include "worker/ps_client.h"
#include "worker/trainer.h"

namespace deepfm {

struct WorkerTaskOptions {
  std::string name = "worker:0";  // how logs name this task
  TrainerOptions trainer;         // is_chief, task_index (the trainer index), num_workers, ...
  PsClientOptions client;
  // What the servers must run (checked before training).
  std::string optimizer = "adamasync";
  double learning_rate = 0.001;
  bool evaluate = true;  // the chief evaluates after training
  ReaderOptions eval_data;
  // Every trainer's report (worker<i>.json) and the chief's metrics.json go
  // here: the job folder, on a filesystem every task sees.
  std::string output_dir;
  bool shutdown_ps = false;  // ask every shard to stop when done (by-hand runs)
  // The Prometheus page (obs/trainer_metrics.h) at metrics_bind:metrics_port;
  // port 0: none.
  int metrics_port = 0;
  rpc::Security metrics_security;  // the token a scrape must carry (none: open)
  // In-process shards (a stand-alone job) whose Stats the page also serves,
  // by task name; each must outlive RunWorkerTask.
  std::vector<std::pair<std::string, std::function<void(ps::StatsResponse*)>>> shard_stats;
  std::string metrics_bind = "127.0.0.1";
  bool insecure = false;  // the page may listen beyond loopback without a token
};

// Returns the process exit code: 0 on success, 1 on an error (printed).
// Connects to options.client.hosts over gRPC.
int RunWorkerTask(const WorkerTaskOptions& options);
// The same with a client already made (the stand-alone job's in-process
// shards).
int RunWorkerTask(const WorkerTaskOptions& options, std::unique_ptr<PsClient> client);

}  // namespace deepfm

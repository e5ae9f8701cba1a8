// `deepfm serve`: the online Predict service (proto/serving.proto) over one
// export, with request batching and hot reload.
//
// Threads and ownership:
//   - gRPC handler threads authenticate a call, parse its rows by the
//     current model's spec into a Batch of their own (serving/request_rows.h)
//     and queue it, then wait for its scores;
//   - `scoring_threads` batchers each take the oldest queued request, keep
//     taking more that arrive within batch_wait_us of it (up to
//     max_batch_rows rows, all parsed for the same model), score them in
//     one forward pass with that model, and hand every request its rows'
//     scores;
//   - with `watch`, a watcher polls the export root and loads a newer
//     version beside the one serving; only a model that loads and verifies
//     replaces it (one pointer swap under a mutex). Passes already running
//     finish on the old model, which goes when its last pass does, so no
//     request fails or waits for a swap. A damaged export is refused, logged
//     and counted, and the old model keeps serving; it is tried again only
//     when its file changes.
// Every call must carry the token (when there is one) and is rejected with
// UNAUTHENTICATED before anything else; a bad request is INVALID_ARGUMENT
// naming the row and field, and changes nothing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "rpc/security.h"
#include "serving/serving_model.h"

namespace grpc {
class Server;
}

namespace deepfm::obs {
class MetricsEndpoint;
}

namespace deepfm::serving {

struct ServeOptions {
  std::string model;  // an export root (with watch), version folder or model.dfm
  ModelOptions model_options;
  std::string bind = "127.0.0.1";
  int port = 0;  // 0: a free port (tests)
  rpc::Security security;
  bool insecure = false;  // allow a non-loopback bind without a token
  int64_t batch_wait_us = 200;
  int max_batch_rows = 1024;
  int scoring_threads = 1;
  int handler_threads = 4;
  int64_t max_message_bytes = 64 << 20;
  bool watch = false;
  int watch_interval_ms = 1000;
  int metrics_port = -1;  // -1: no page; 0: a free port
};

// What the service has done, for tests and the benchmark.
struct ServeStats {
  int64_t requests = 0;  // answered with scores
  int64_t rejected = 0;  // refused (auth, bad input)
  int64_t rows = 0;
  int64_t passes = 0;        // forward passes
  int64_t largest_pass = 0;  // rows
  int64_t loads = 0;         // models loaded (the first included)
  int64_t refused = 0;       // newer exports refused
  int64_t model_version = 0;
};

class PredictServer {
 public:
  // Loads the model, starts the batchers, the watcher and the server.
  static Status Start(const ServeOptions& options, std::unique_ptr<PredictServer>* out);
  ~PredictServer();  // Shutdown()

  int port() const { return port_; }
  std::string address() const;
  int metrics_port() const;
  ServeStats stats() const;
  std::shared_ptr<const ServingModel> model() const;
  // Looks for a newer export now (what the watcher does every interval).
  // Returns whether it swapped.
  bool CheckForNewModel();
  // Stops accepting calls, answers those in flight, stops the threads.
  void Shutdown();

  // The service's handlers call these.
  class Service;
  struct Pending;
  // Queues `p` and blocks until it is scored.
  void ScoreAndWait(Pending* p);
  // A call refused (auth, bad input): the stats and the page count it.
  void CountRejected();
  const ServeOptions& options() const { return options_; }
  struct Metrics;
  Metrics* metrics() const { return metrics_.get(); }

 private:
  PredictServer() = default;
  void RunBatcher();
  void RunWatcher();
  // Takes the next group of requests (false once stopping and drained).
  bool NextGroup(std::vector<Pending*>* group);
  void SetModel(std::shared_ptr<const ServingModel> m, int64_t folder_version);

  ServeOptions options_;
  std::string watch_root_;
  int port_ = 0;

  mutable std::mutex model_mu_;
  std::shared_ptr<const ServingModel> model_ DEEPFM_GUARDED_BY(model_mu_);
  // With watch: the version folder the model came from (its number).
  int64_t watched_version_ DEEPFM_GUARDED_BY(model_mu_) = -1;
  std::string refused_file_ DEEPFM_GUARDED_BY(model_mu_);  // "path size mtime" of the last refused
  std::mutex check_mu_;                                    // one look for a new model at a time

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending*> queue_ DEEPFM_GUARDED_BY(queue_mu_);
  bool stopping_ DEEPFM_GUARDED_BY(queue_mu_) = false;

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stop_ DEEPFM_GUARDED_BY(watch_mu_) = false;

  std::atomic<int64_t> requests_{0}, rejected_{0}, rows_{0}, passes_{0}, largest_pass_{0},
      loads_{0}, refused_{0};
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<obs::MetricsEndpoint> endpoint_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::thread> batchers_;
  std::thread watcher_;
  bool shut_down_ = false;
};

}  // namespace deepfm::serving

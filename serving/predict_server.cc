#include "serving/predict_server.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "common/cluster_spec.h"
#include "common/timing.h"
#include "obs/metrics_endpoint.h"
#include "obs/rpc_latency.h"
#include "proto/serving.grpc.pb.h"
#include "serving/request_rows.h"

namespace deepfm::serving {

namespace fs = std::filesystem;

struct PredictServer::Pending {
  std::shared_ptr<const ServingModel> model;  // parsed for and scored by
  const FeatureSpec* shaped_for = nullptr;
  Batch batch;
  std::vector<float> probs;
  int64_t enqueued_ns = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool done DEEPFM_GUARDED_BY(mu) = false;
};

struct PredictServer::Metrics {
  std::shared_ptr<prometheus::Registry> own_registry;  // when there is no page
  prometheus::Histogram* latency = nullptr;
  prometheus::Histogram* batch_rows = nullptr;
  prometheus::Histogram* request_rows = nullptr;
  prometheus::Counter* rows = nullptr;
  prometheus::Counter* requests = nullptr;
  prometheus::Counter* rejected = nullptr;
  prometheus::Counter* loads = nullptr;
  prometheus::Counter* refused = nullptr;
  prometheus::Gauge* version = nullptr;

  explicit Metrics(prometheus::Registry& r) {
    latency = &prometheus::BuildHistogram()
                   .Name("deepfm_serve_request_seconds")
                   .Help("Predict calls, from the handler's start to its answer")
                   .Register(r)
                   .Add({}, obs::RpcLatency::Buckets());
    prometheus::Histogram::BucketBoundaries sizes;
    for (double b = 1; b <= 65536; b *= 2) sizes.push_back(b);
    batch_rows = &prometheus::BuildHistogram()
                      .Name("deepfm_serve_batch_rows")
                      .Help("Rows per forward pass (requests batched together)")
                      .Register(r)
                      .Add({}, sizes);
    request_rows = &prometheus::BuildHistogram()
                        .Name("deepfm_serve_request_rows")
                        .Help("Rows per Predict request")
                        .Register(r)
                        .Add({}, sizes);
    rows = &prometheus::BuildCounter()
                .Name("deepfm_serve_rows_total")
                .Help("Rows scored")
                .Register(r)
                .Add({});
    auto& calls = prometheus::BuildCounter()
                      .Name("deepfm_serve_requests_total")
                      .Help("Predict calls by outcome")
                      .Register(r);
    requests = &calls.Add({{"outcome", "ok"}});
    rejected = &calls.Add({{"outcome", "rejected"}});
    auto& models = prometheus::BuildCounter()
                       .Name("deepfm_serve_model_loads_total")
                       .Help("Exports loaded, and newer ones refused (damaged or unreadable)")
                       .Register(r);
    loads = &models.Add({{"outcome", "loaded"}});
    refused = &models.Add({{"outcome", "refused"}});
    version = &prometheus::BuildGauge()
                   .Name("deepfm_serve_model_version")
                   .Help("Global step of the export serving")
                   .Register(r)
                   .Add({});
  }
};

class PredictServer::Service final : public Predictor::Service {
 public:
  explicit Service(PredictServer* owner) : owner_(owner) {}

  grpc::Status Predict(grpc::ServerContext* ctx, const PredictRequest* req,
                       PredictResponse* resp) override {
    Stopwatch wall;
    if (auto a = owner_->options().security.Check(*ctx); !a.ok()) {
      owner_->CountRejected();
      return a;
    }
    thread_local std::unique_ptr<Pending> pending;
    if (!pending) pending = std::make_unique<Pending>();
    Pending* p = pending.get();
    p->model = owner_->model();
    const FeatureSpec& spec = *p->model->spec();
    if (p->shaped_for != &spec) {
      p->batch = Batch();
      p->batch.Shape(spec);
      p->shaped_for = &spec;
    }
    const Status s = ParseRequestRows(spec, *req, &p->batch);
    if (!s.ok()) {
      p->model.reset();
      owner_->CountRejected();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, s.message());
    }
    owner_->ScoreAndWait(p);
    resp->mutable_probabilities()->Assign(p->probs.begin(), p->probs.begin() + p->batch.size);
    resp->set_model_version(p->model->version());
    p->model.reset();
    owner_->metrics()->latency->Observe(wall.Seconds());
    owner_->metrics()->request_rows->Observe(p->batch.size);
    owner_->metrics()->requests->Increment();
    return grpc::Status::OK;
  }

  grpc::Status ModelInfo(grpc::ServerContext* ctx, const ModelInfoRequest*,
                         ModelInfoResponse* resp) override {
    if (auto a = owner_->options().security.Check(*ctx); !a.ok()) {
      owner_->CountRejected();
      return a;
    }
    const std::shared_ptr<const ServingModel> m = owner_->model();
    const ServeStats st = owner_->stats();
    resp->set_model_version(m->version());
    resp->set_model_path(m->path());
    for (const FeatureSpec::ColumnInfo& c : m->spec()->columns()) resp->add_columns(c.name);
    resp->set_separator(std::string(1, m->spec()->separator() ? m->spec()->separator() : ','));
    resp->set_loads(st.loads);
    resp->set_refused(st.refused);
    return grpc::Status::OK;
  }

 private:
  PredictServer* owner_;
};

Status PredictServer::Start(const ServeOptions& o, std::unique_ptr<PredictServer>* out) {
  if (o.batch_wait_us < 0 || o.batch_wait_us > 1000000) {
    return InvalidArgument("--batch_wait_us=" + std::to_string(o.batch_wait_us) +
                           ": must lie in [0, 1000000]");
  }
  if (o.max_batch_rows < 1) return InvalidArgument("--max_batch_rows must be >= 1");
  if (!IsLoopbackHost(o.bind) && !o.security.has_token() && !o.insecure) {
    return FailedPrecondition(
        "deepfm serve would listen on " + o.bind +
        " without a token: give --auth_token_file, or --insecure to let anyone "
        "reaching the port use the model");
  }
  std::unique_ptr<PredictServer> s(new PredictServer());
  s->options_ = o;
  std::error_code ec;
  if (o.watch) {
    if (!fs::is_directory(o.model, ec) || fs::exists(fs::path(o.model) / kExportFileName, ec)) {
      return InvalidArgument(
          "--watch needs --model to be an export root (the --out of deepfm export, "
          "holding numbered versions), not " +
          o.model);
    }
    s->watch_root_ = o.model;
  }
  std::shared_ptr<const ServingModel> model;
  std::string first = o.model;
  int64_t folder_version = -1;
  if (o.watch) {
    Status st = FindNewestExport(o.model, &first, &folder_version);
    if (!st.ok()) return st;
  }
  Status st = ServingModel::Load(first, o.model_options, &model);
  if (!st.ok()) return st;
  if (o.metrics_port >= 0) {
    obs::MetricsEndpointOptions mo;
    mo.bind = o.bind;
    mo.port = o.metrics_port;
    mo.security = o.security;
    mo.tls = o.security;
    mo.insecure = o.insecure;
    st = obs::MetricsEndpoint::Start(mo, &s->endpoint_);
    if (!st.ok()) return st;
    s->metrics_ = std::make_unique<Metrics>(s->endpoint_->registry());
  } else {
    auto registry = std::make_shared<prometheus::Registry>();
    s->metrics_ = std::make_unique<Metrics>(*registry);
    s->metrics_->own_registry = registry;
  }
  s->SetModel(std::move(model), folder_version);

  s->service_ = std::make_unique<Service>(s.get());
  grpc::ServerBuilder builder;
  const std::string addr = o.bind + ":" + std::to_string(o.port);
  grpc::EnableDefaultHealthCheckService(true);
  builder.AddListeningPort(addr, o.security.ServerCredentials(), &s->port_);
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(o.max_message_bytes));
  const int threads = std::max(1, o.handler_threads);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, threads);
  for (int i = 0; i < std::max(1, o.scoring_threads); ++i) {
    s->batchers_.emplace_back([p = s.get()] { p->RunBatcher(); });
  }
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return Status(Code::kUnavailable,
                  "cannot listen on " + addr + " (port in use or bad address; try another --port)");
  }
  if (o.watch) s->watcher_ = std::thread([p = s.get()] { p->RunWatcher(); });
  *out = std::move(s);
  return Status::Ok();
}

std::string PredictServer::address() const { return options_.bind + ":" + std::to_string(port_); }

void PredictServer::CountRejected() {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  metrics_->rejected->Increment();
}

int PredictServer::metrics_port() const { return endpoint_ ? endpoint_->port() : -1; }

ServeStats PredictServer::stats() const {
  ServeStats s;
  s.requests = requests_.load();
  s.rejected = rejected_.load();
  s.rows = rows_.load();
  s.passes = passes_.load();
  s.largest_pass = largest_pass_.load();
  s.loads = loads_.load();
  s.refused = refused_.load();
  s.model_version = model()->version();
  return s;
}

std::shared_ptr<const ServingModel> PredictServer::model() const {
  std::lock_guard<std::mutex> lock(model_mu_);
  return model_;
}

void PredictServer::SetModel(std::shared_ptr<const ServingModel> m, int64_t folder_version) {
  const int64_t version = m->version();
  const std::string path = m->path();
  {
    std::lock_guard<std::mutex> lock(model_mu_);
    model_ = std::move(m);
    watched_version_ = folder_version;
  }
  loads_.fetch_add(1);
  metrics_->loads->Increment();
  metrics_->version->Set(static_cast<double>(version));
  LOG(INFO) << "serving " << path << " (version " << version << ")";
}

bool PredictServer::CheckForNewModel() {
  if (watch_root_.empty()) return false;
  std::lock_guard<std::mutex> check(check_mu_);
  std::string dir;
  int64_t version;
  if (!FindNewestExport(watch_root_, &dir, &version).ok()) return false;
  {
    std::lock_guard<std::mutex> lock(model_mu_);
    if (version <= watched_version_) return false;
  }
  const std::string file = (fs::path(dir) / kExportFileName).string();
  struct stat st;
  if (stat(file.c_str(), &st) != 0) return false;
  const std::string id = file + " " + std::to_string(st.st_size) + " " +
                         std::to_string(st.st_mtim.tv_sec) + "." +
                         std::to_string(st.st_mtim.tv_nsec);
  {
    std::lock_guard<std::mutex> lock(model_mu_);
    if (id == refused_file_) return false;  // refused already; tried again once it changes
  }
  std::shared_ptr<const ServingModel> next;
  const Status s = ServingModel::Load(file, options_.model_options, &next);
  if (!s.ok()) {
    {
      std::lock_guard<std::mutex> lock(model_mu_);
      refused_file_ = id;
    }
    refused_.fetch_add(1);
    metrics_->refused->Increment();
    LOG(ERROR) << "refused the new export " << file << ", still serving version "
               << model()->version() << ": " << s.message();
    return false;
  }
  SetModel(std::move(next), version);
  return true;
}

void PredictServer::RunWatcher() {
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!watch_stop_) {
    watch_cv_.wait_for(lock, std::chrono::milliseconds(options_.watch_interval_ms));
    if (watch_stop_) break;
    lock.unlock();
    CheckForNewModel();
    lock.lock();
  }
}

void PredictServer::ScoreAndWait(Pending* p) {
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->done = false;
  }
  p->enqueued_ns = NowNanos();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_.push_back(p);
  }
  queue_cv_.notify_one();
  std::unique_lock<std::mutex> lock(p->mu);
  p->cv.wait(lock, [p]() DEEPFM_REQUIRES(p->mu) { return p->done; });
}

bool PredictServer::NextGroup(std::vector<Pending*>* group) {
  group->clear();
  std::unique_lock<std::mutex> lock(queue_mu_);
  queue_cv_.wait(lock,
                 [this]() DEEPFM_REQUIRES(queue_mu_) { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return false;  // stopping, nothing left
  Pending* first = queue_.front();
  queue_.pop_front();
  group->push_back(first);
  int rows = first->batch.size;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::nanoseconds(std::max<int64_t>(
                            0, first->enqueued_ns + options_.batch_wait_us * 1000 - NowNanos()));
  while (rows < options_.max_batch_rows) {
    if (!queue_.empty()) {
      Pending* next = queue_.front();
      // One pass runs one model: a request parsed for another waits for the next.
      if (next->model != first->model || rows + next->batch.size > options_.max_batch_rows) break;
      queue_.pop_front();
      group->push_back(next);
      rows += next->batch.size;
      continue;
    }
    if (stopping_ || queue_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      // Take what arrived with the deadline, then go.
      if (queue_.empty() || queue_.front()->model != first->model ||
          rows + queue_.front()->batch.size > options_.max_batch_rows) {
        break;
      }
    }
  }
  return true;
}

void PredictServer::RunBatcher() {
  std::unique_ptr<Scorer> scorer;
  std::vector<Pending*> group;
  Batch merged;
  const FeatureSpec* merged_for = nullptr;
  std::vector<float> probs;
  while (NextGroup(&group)) {
    const std::shared_ptr<const ServingModel>& model = group.front()->model;
    if (!scorer || &scorer->model() != model.get()) scorer = std::make_unique<Scorer>(model);
    int rows = 0;
    if (group.size() == 1) {
      Pending* p = group.front();
      p->probs.resize(p->batch.size);
      scorer->Score(p->batch, p->probs.data());
      rows = p->batch.size;
    } else {
      if (merged_for != model->spec().get()) {
        merged = Batch();
        merged.Shape(*model->spec());
        merged_for = model->spec().get();
      }
      merged.Resize(0);
      for (Pending* p : group) AppendRows(p->batch, &merged);
      rows = merged.size;
      probs.resize(rows);
      scorer->Score(merged, probs.data());
      int at = 0;
      for (Pending* p : group) {
        p->probs.assign(probs.begin() + at, probs.begin() + at + p->batch.size);
        at += p->batch.size;
      }
    }
    passes_.fetch_add(1, std::memory_order_relaxed);
    for (int64_t seen = largest_pass_.load();
         rows > seen && !largest_pass_.compare_exchange_weak(seen, rows);) {
    }
    rows_.fetch_add(rows, std::memory_order_relaxed);
    requests_.fetch_add(static_cast<int64_t>(group.size()), std::memory_order_relaxed);
    metrics_->batch_rows->Observe(rows);
    metrics_->rows->Increment(rows);
    for (Pending* p : group) {
      {
        std::lock_guard<std::mutex> lock(p->mu);
        p->done = true;
      }
      p->cv.notify_one();
    }
  }
}

void PredictServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
    // Answers the calls in flight (their batchers still run), refuses new ones.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  for (std::thread& t : batchers_) t.join();
  batchers_.clear();
}

PredictServer::~PredictServer() { Shutdown(); }

}  // namespace deepfm::serving

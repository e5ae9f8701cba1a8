#include "ps/ps_server.h"

#include <glog/logging.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>

#include "proto/ps.grpc.pb.h"
#include "ps/checkpoint.h"

namespace deepfm::ps {

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

namespace {

// A Save folder: relative to the shard's checkpoint root, no "..", no
// absolute path, so a client can never make a shard write elsewhere.
Status ResolveSaveFolder(const std::string& root, const std::string& dir, std::string* out) {
  if (root.empty()) {
    return FailedPrecondition("save: this shard has no checkpoint root (--checkpoint_dir); it saves nothing");
  }
  if (dir.empty() || dir.front() == '/') {
    return InvalidArgument("save: folder '" + dir + "' must be a relative name below the checkpoint root");
  }
  for (const auto& part : std::filesystem::path(dir)) {
    if (part == "..") return InvalidArgument("save: folder '" + dir + "' may not contain '..'");
  }
  const std::filesystem::path folder = std::filesystem::path(root) / dir;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return Internal("save: cannot create " + folder.string() + ": " + ec.message());
  *out = folder.string();
  return Status::Ok();
}

}  // namespace

// Each handler checks the caller's token before it reads the request.
class PsServer::Service final : public ParameterServer::Service {
 public:
  explicit Service(PsServer* owner)
      : owner_(owner), shard_(owner->shard_.get()), security_(owner->options_.security) {}

  grpc::Status RegisterTable(grpc::ServerContext* ctx, const RegisterTableRequest* req,
                             RegisterTableResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->RegisterTable(*req, resp));
  }
  grpc::Status RegisterDense(grpc::ServerContext* ctx, const RegisterDenseRequest* req,
                             RegisterDenseResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->RegisterDense(*req, resp));
  }
  grpc::Status Pull(grpc::ServerContext* ctx, const PullRequest* req, PullResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Pull(*req, resp));
  }
  grpc::Status Push(grpc::ServerContext* ctx, const PushRequest* req, PushResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Push(*req, resp));
  }
  grpc::Status GlobalStep(grpc::ServerContext* ctx, const StepRequest* req,
                          StepResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->GlobalStep(*req, resp));
  }
  grpc::Status WorkerDone(grpc::ServerContext* ctx, const WorkerDoneRequest* req,
                          WorkerDoneResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->WorkerDone(*req, resp));
  }
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const HeartbeatRequest* req,
                         HeartbeatResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Heartbeat(*req, resp));
  }
  grpc::Status JobStatus(grpc::ServerContext* ctx, const JobStatusRequest*,
                         JobStatusResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    shard_->JobStatus(resp);
    return grpc::Status::OK;
  }
  grpc::Status Cut(grpc::ServerContext* ctx, const CutRequest*, CutResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Cut(resp));
  }
  grpc::Status Save(grpc::ServerContext* ctx, const SaveRequest* req, SaveResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    if (req->global_step() < 0) return ToGrpc(InvalidArgument("save: global_step is negative"));
    if (req->wait_ms() < 0) return ToGrpc(InvalidArgument("save: wait_ms is negative"));
    if (req->since_step() < 0 || (req->since_step() > 0 && req->since_step() >= req->global_step())) {
      return ToGrpc(InvalidArgument("save: since_step " + std::to_string(req->since_step()) +
                                    " must be 0 (a full save) or below global_step " +
                                    std::to_string(req->global_step())));
    }
    std::string folder;
    Status s = ResolveSaveFolder(owner_->options_.checkpoint_root, req->dir(), &folder);
    if (!s.ok()) return ToGrpc(s);
    SaveShardOptions so;
    so.force_cut = false;  // a live shard saves only a cut it took in order
    so.since_step = req->since_step() > 0 ? req->since_step() : -1;
    so.wait = std::chrono::milliseconds(req->wait_ms() > 0 ? req->wait_ms()
                                                           : shard_->options().cut_wait_ms);
    SaveShardResult r;
    s = SaveShard(*shard_, folder, req->global_step(), &r, so);
    if (!s.ok()) return ToGrpc(s);
    resp->set_file(r.file.name);
    resp->set_bytes(r.file.bytes);
    resp->set_crc32c(r.file.crc32c);
    resp->set_rows(r.rows);
    for (const TrainerPosition& p : r.positions) *resp->add_positions() = p;
    resp->set_cut_ms(r.cut_ms);
    resp->set_write_ms(r.write_ms);
    LOG(INFO) << "shard " << shard_->options().shard_index << ": saved step " << req->global_step()
              << ", " << r.rows << " rows to " << folder << "/" << r.file.name << " ("
              << r.file.bytes << " bytes; cut held pushes " << r.cut_ms << " ms, longest stripe copy "
              << r.max_stripe_ms << " ms, write " << r.write_ms << " ms)";
    return grpc::Status::OK;
  }
  grpc::Status Stats(grpc::ServerContext* ctx, const StatsRequest*, StatsResponse* resp) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    shard_->Stats(resp);
    return grpc::Status::OK;
  }
  grpc::Status Shutdown(grpc::ServerContext* ctx, const ShutdownRequest*, ShutdownResponse*) override {
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    LOG(INFO) << "shard " << shard_->options().shard_index << ": shutdown requested by " << ctx->peer();
    owner_->RequestShutdown();
    return grpc::Status::OK;
  }

 private:
  PsServer* owner_;
  Shard* shard_;
  const rpc::Security& security_;
};

std::unique_ptr<PsServer> PsServer::Start(const ServerOptions& options,
                                          std::unique_ptr<Shard> shard, Status* status) {
  std::unique_ptr<PsServer> s(new PsServer());
  s->options_ = options;
  s->shard_ = std::move(shard);
  s->service_ = std::make_unique<Service>(s.get());
  grpc::ServerBuilder builder;
  const std::string addr = options.bind + ":" + std::to_string(options.port);
  grpc::EnableDefaultHealthCheckService(true);
  builder.AddListeningPort(addr, options.security.ServerCredentials(), &s->port_);
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  const int threads = std::max(1, options.threads);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, threads);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, threads);
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    *status = Status(Code::kUnavailable, "cannot listen on " + addr +
                                             " (port in use or bad address; try another --port)");
    return nullptr;
  }
  *status = Status::Ok();
  return s;
}

std::string PsServer::address() const { return options_.bind + ":" + std::to_string(port_); }

void PsServer::RequestShutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  stopping_ = true;
  // grpc::Server::Shutdown waits for in-flight handlers, including the one
  // asking, so it must run on another thread.
  stopper_ = std::thread([this] {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
    cv_.notify_all();
  });
}

void PsServer::Shutdown() {
  RequestShutdown();
  Wait();
}

void PsServer::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopped_; });
}

PsServer::~PsServer() {
  Shutdown();
  if (stopper_.joinable()) stopper_.join();
}

}  // namespace deepfm::ps

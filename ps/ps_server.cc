#include "ps/ps_server.h"

#include <glog/logging.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>

#include "common/timing.h"
#include "proto/ps.grpc.pb.h"
#include "ps/checkpoint.h"
#include "ps/save_request.h"

namespace deepfm::ps {

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

// Times one handler, refused calls included, into the method's histogram.
class HandlerTimer {
 public:
  HandlerTimer(obs::RpcLatency* latency, const char* method) : latency_(latency), method_(method) {}
  ~HandlerTimer() {
    if (latency_) latency_->Observe(method_, watch_.Seconds());
  }

 private:
  obs::RpcLatency* latency_;
  const char* method_;
  Stopwatch watch_;
};

// Each handler checks the caller's token before it reads the request.
class PsServer::Service final : public ParameterServer::Service {
 public:
  explicit Service(PsServer* owner)
      : owner_(owner),
        shard_(owner->shard_.get()),
        security_(owner->options_.security),
        latency_(owner->options_.rpc_latency) {}

  // The methods PsServer times, for RpcLatency.
  static std::vector<std::string> Methods() {
    return {"RegisterTable", "RegisterDense", "Pull", "Push",  "GlobalStep", "WorkerDone",
            "Heartbeat",     "JobStatus",     "Cut",  "Save",  "Stats",      "Shutdown"};
  }

  grpc::Status RegisterTable(grpc::ServerContext* ctx, const RegisterTableRequest* req,
                             RegisterTableResponse* resp) override {
    HandlerTimer timer(latency_, "RegisterTable");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->RegisterTable(*req, resp));
  }
  grpc::Status RegisterDense(grpc::ServerContext* ctx, const RegisterDenseRequest* req,
                             RegisterDenseResponse* resp) override {
    HandlerTimer timer(latency_, "RegisterDense");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->RegisterDense(*req, resp));
  }
  grpc::Status Pull(grpc::ServerContext* ctx, const PullRequest* req, PullResponse* resp) override {
    HandlerTimer timer(latency_, "Pull");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Pull(*req, resp));
  }
  grpc::Status Push(grpc::ServerContext* ctx, const PushRequest* req, PushResponse* resp) override {
    HandlerTimer timer(latency_, "Push");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Push(*req, resp));
  }
  grpc::Status GlobalStep(grpc::ServerContext* ctx, const StepRequest* req,
                          StepResponse* resp) override {
    HandlerTimer timer(latency_, "GlobalStep");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->GlobalStep(*req, resp));
  }
  grpc::Status WorkerDone(grpc::ServerContext* ctx, const WorkerDoneRequest* req,
                          WorkerDoneResponse* resp) override {
    HandlerTimer timer(latency_, "WorkerDone");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->WorkerDone(*req, resp));
  }
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const HeartbeatRequest* req,
                         HeartbeatResponse* resp) override {
    HandlerTimer timer(latency_, "Heartbeat");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Heartbeat(*req, resp));
  }
  grpc::Status JobStatus(grpc::ServerContext* ctx, const JobStatusRequest*,
                         JobStatusResponse* resp) override {
    HandlerTimer timer(latency_, "JobStatus");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    shard_->JobStatus(resp);
    return grpc::Status::OK;
  }
  grpc::Status Cut(grpc::ServerContext* ctx, const CutRequest* req, CutResponse* resp) override {
    HandlerTimer timer(latency_, "Cut");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(shard_->Cut(*req, resp));
  }
  grpc::Status Save(grpc::ServerContext* ctx, const SaveRequest* req, SaveResponse* resp) override {
    HandlerTimer timer(latency_, "Save");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    return ToGrpc(HandleSaveRequest(*shard_, owner_->options_.checkpoint_root, *req, resp));
  }
  grpc::Status Stats(grpc::ServerContext* ctx, const StatsRequest*, StatsResponse* resp) override {
    HandlerTimer timer(latency_, "Stats");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    HandleStatsRequest(*shard_, owner_->options_.checkpoint_root, resp);
    return grpc::Status::OK;
  }
  grpc::Status Shutdown(grpc::ServerContext* ctx, const ShutdownRequest*,
                        ShutdownResponse*) override {
    HandlerTimer timer(latency_, "Shutdown");
    if (auto a = security_.Check(*ctx); !a.ok()) return a;
    LOG(INFO) << "shard " << shard_->options().shard_index << ": shutdown requested by "
              << ctx->peer();
    owner_->RequestShutdown();
    return grpc::Status::OK;
  }

 private:
  PsServer* owner_;
  Shard* shard_;
  const rpc::Security& security_;
  obs::RpcLatency* latency_;
};

std::vector<std::string> PsServer::Methods() { return Service::Methods(); }

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

#include "worker/shard_endpoint.h"

namespace deepfm {
namespace {

class GrpcEndpoint final : public ShardEndpoint {
 public:
  explicit GrpcEndpoint(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)), stub_(ps::ParameterServer::NewStub(channel_)) {}

  void RegisterTable(grpc::ClientContext* ctx, const ps::RegisterTableRequest* req,
                     ps::RegisterTableResponse* resp, Done done) override {
    stub_->async()->RegisterTable(ctx, req, resp, std::move(done));
  }
  void RegisterDense(grpc::ClientContext* ctx, const ps::RegisterDenseRequest* req,
                     ps::RegisterDenseResponse* resp, Done done) override {
    stub_->async()->RegisterDense(ctx, req, resp, std::move(done));
  }
  void Pull(grpc::ClientContext* ctx, const ps::PullRequest* req, ps::PullResponse* resp,
            Done done) override {
    stub_->async()->Pull(ctx, req, resp, std::move(done));
  }
  void Push(grpc::ClientContext* ctx, const ps::PushRequest* req, ps::PushResponse* resp,
            Done done) override {
    stub_->async()->Push(ctx, req, resp, std::move(done));
  }
  void GlobalStep(grpc::ClientContext* ctx, const ps::StepRequest* req, ps::StepResponse* resp,
                  Done done) override {
    stub_->async()->GlobalStep(ctx, req, resp, std::move(done));
  }
  void WorkerDone(grpc::ClientContext* ctx, const ps::WorkerDoneRequest* req,
                  ps::WorkerDoneResponse* resp, Done done) override {
    stub_->async()->WorkerDone(ctx, req, resp, std::move(done));
  }
  void Heartbeat(grpc::ClientContext* ctx, const ps::HeartbeatRequest* req,
                 ps::HeartbeatResponse* resp, Done done) override {
    stub_->async()->Heartbeat(ctx, req, resp, std::move(done));
  }
  void JobStatus(grpc::ClientContext* ctx, const ps::JobStatusRequest* req,
                 ps::JobStatusResponse* resp, Done done) override {
    stub_->async()->JobStatus(ctx, req, resp, std::move(done));
  }
  void Cut(grpc::ClientContext* ctx, const ps::CutRequest* req, ps::CutResponse* resp,
           Done done) override {
    stub_->async()->Cut(ctx, req, resp, std::move(done));
  }
  void Save(grpc::ClientContext* ctx, const ps::SaveRequest* req, ps::SaveResponse* resp,
            Done done) override {
    stub_->async()->Save(ctx, req, resp, std::move(done));
  }
  void Stats(grpc::ClientContext* ctx, const ps::StatsRequest* req, ps::StatsResponse* resp,
             Done done) override {
    stub_->async()->Stats(ctx, req, resp, std::move(done));
  }
  void Shutdown(grpc::ClientContext* ctx, const ps::ShutdownRequest* req,
                ps::ShutdownResponse* resp, Done done) override {
    stub_->async()->Shutdown(ctx, req, resp, std::move(done));
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ps::ParameterServer::Stub> stub_;
};

}  // namespace

std::unique_ptr<ShardEndpoint> GrpcShardEndpoint(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<GrpcEndpoint>(std::move(channel));
}

}  // namespace deepfm

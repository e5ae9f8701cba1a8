#include "launcher/in_process_shards.h"

#include "ps/ps_server.h"
#include "ps/save_request.h"

namespace deepfm::launcher {
namespace {

class InProcessEndpoint final : public ShardEndpoint {
 public:
  InProcessEndpoint(ps::Shard* shard, std::string root) : shard_(shard), root_(std::move(root)) {}

  void RegisterTable(grpc::ClientContext*, const ps::RegisterTableRequest* req,
                     ps::RegisterTableResponse* resp, Done done) override {
    done(ps::ToGrpc(shard_->RegisterTable(*req, resp)));
  }
  void RegisterDense(grpc::ClientContext*, const ps::RegisterDenseRequest* req,
                     ps::RegisterDenseResponse* resp, Done done) override {
    done(ps::ToGrpc(shard_->RegisterDense(*req, resp)));
  }
  void Pull(grpc::ClientContext*, const ps::PullRequest* req, ps::PullResponse* resp,
            Done done) override {
    done(ps::ToGrpc(shard_->Pull(*req, resp)));
  }
  void Push(grpc::ClientContext*, const ps::PushRequest* req, ps::PushResponse* resp,
            Done done) override {
    done(ps::ToGrpc(shard_->Push(*req, resp)));
  }
  void GlobalStep(grpc::ClientContext*, const ps::StepRequest* req, ps::StepResponse* resp,
                  Done done) override {
    done(ps::ToGrpc(shard_->GlobalStep(*req, resp)));
  }
  void WorkerDone(grpc::ClientContext*, const ps::WorkerDoneRequest* req,
                  ps::WorkerDoneResponse* resp, Done done) override {
    done(ps::ToGrpc(shard_->WorkerDone(*req, resp)));
  }
  void Heartbeat(grpc::ClientContext*, const ps::HeartbeatRequest* req, ps::HeartbeatResponse* resp,
                 Done done) override {
    done(ps::ToGrpc(shard_->Heartbeat(*req, resp)));
  }
  void JobStatus(grpc::ClientContext*, const ps::JobStatusRequest*, ps::JobStatusResponse* resp,
                 Done done) override {
    shard_->JobStatus(resp);
    done(grpc::Status::OK);
  }
  void Cut(grpc::ClientContext*, const ps::CutRequest* req, ps::CutResponse* resp, Done done) override {
    done(ps::ToGrpc(shard_->Cut(*req, resp)));
  }
  void Save(grpc::ClientContext*, const ps::SaveRequest* req, ps::SaveResponse* resp,
            Done done) override {
    done(ps::ToGrpc(ps::HandleSaveRequest(*shard_, root_, *req, resp)));
  }
  void Stats(grpc::ClientContext*, const ps::StatsRequest*, ps::StatsResponse* resp,
             Done done) override {
    ps::HandleStatsRequest(*shard_, root_, resp);
    done(grpc::Status::OK);
  }
  // The shards live as long as the job's process: nothing to stop.
  void Shutdown(grpc::ClientContext*, const ps::ShutdownRequest*, ps::ShutdownResponse*,
                Done done) override {
    done(grpc::Status::OK);
  }

 private:
  ps::Shard* const shard_;
  const std::string root_;
};

}  // namespace

std::unique_ptr<ShardEndpoint> InProcessShardEndpoint(ps::Shard* shard,
                                                      std::string checkpoint_root) {
  return std::make_unique<InProcessEndpoint>(shard, std::move(checkpoint_root));
}

}  // namespace deepfm::launcher

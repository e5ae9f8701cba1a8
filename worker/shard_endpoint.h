// One shard as PsClient reaches it. Every call completes by running `done`
// exactly once, on any thread, with the call's status; `ctx` carries the
// deadline and the token where the shard is remote.
//
// Two kinds exist: a gRPC stub (GrpcShardEndpoint, every multi-process job)
// and the shard itself in this process (the stand-alone job,
// launcher/in_process_shards.h), so one PsClient and one trainer serve both.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "proto/ps.grpc.pb.h"

namespace deepfm {

class ShardEndpoint {
 public:
  using Done = std::function<void(grpc::Status)>;
  virtual ~ShardEndpoint() = default;

  virtual void RegisterTable(grpc::ClientContext* ctx, const ps::RegisterTableRequest* req,
                             ps::RegisterTableResponse* resp, Done done) = 0;
  virtual void RegisterDense(grpc::ClientContext* ctx, const ps::RegisterDenseRequest* req,
                             ps::RegisterDenseResponse* resp, Done done) = 0;
  virtual void Pull(grpc::ClientContext* ctx, const ps::PullRequest* req, ps::PullResponse* resp,
                    Done done) = 0;
  virtual void Push(grpc::ClientContext* ctx, const ps::PushRequest* req, ps::PushResponse* resp,
                    Done done) = 0;
  virtual void GlobalStep(grpc::ClientContext* ctx, const ps::StepRequest* req,
                          ps::StepResponse* resp, Done done) = 0;
  virtual void WorkerDone(grpc::ClientContext* ctx, const ps::WorkerDoneRequest* req,
                          ps::WorkerDoneResponse* resp, Done done) = 0;
  virtual void Heartbeat(grpc::ClientContext* ctx, const ps::HeartbeatRequest* req,
                         ps::HeartbeatResponse* resp, Done done) = 0;
  virtual void JobStatus(grpc::ClientContext* ctx, const ps::JobStatusRequest* req,
                         ps::JobStatusResponse* resp, Done done) = 0;
  virtual void Cut(grpc::ClientContext* ctx, const ps::CutRequest* req, ps::CutResponse* resp,
                   Done done) = 0;
  virtual void Save(grpc::ClientContext* ctx, const ps::SaveRequest* req, ps::SaveResponse* resp,
                    Done done) = 0;
  virtual void Stats(grpc::ClientContext* ctx, const ps::StatsRequest* req, ps::StatsResponse* resp,
                     Done done) = 0;
  virtual void Shutdown(grpc::ClientContext* ctx, const ps::ShutdownRequest* req,
                        ps::ShutdownResponse* resp, Done done) = 0;
};

// A shard behind a gRPC channel; the endpoint keeps the channel alive.
std::unique_ptr<ShardEndpoint> GrpcShardEndpoint(std::shared_ptr<grpc::Channel> channel);

}  // namespace deepfm

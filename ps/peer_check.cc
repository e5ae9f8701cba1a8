#include "ps/peer_check.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "proto/ps.grpc.pb.h"

namespace deepfm::ps {

Status CheckPeersNotAhead(const PeerCheckOptions& o) {
  for (size_t i = 0; i < o.hosts.size(); ++i) {
    if (i == o.self) continue;
    auto channel = grpc::CreateChannel(o.hosts[i], o.security.ChannelCredentials());
    auto stub = ParameterServer::NewStub(channel);
    grpc::ClientContext ctx;
    o.security.Authorize(&ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.timeout_ms));
    StatsRequest req;
    StatsResponse resp;
    if (!stub->Stats(&ctx, req, &resp).ok()) continue;  // not up yet: the job is starting
    if (resp.global_step() <= o.restored_step) continue;
    const std::string mine = o.restored_step > 0
                                 ? "restored step " + std::to_string(o.restored_step) +
                                       (o.restored_from.empty() ? "" : " (" + o.restored_from + ")")
                                 : "started with no checkpoint";
    return FailedPrecondition(
        "shard " + std::to_string(o.self) + " " + mine + ", but shard " + std::to_string(i) + " (" +
        o.hosts[i] + ") is at global step " + std::to_string(resp.global_step()) +
        ": this shard was restarted alone, and serving would set its part of the model back by " +
        std::to_string(resp.global_step() - o.restored_step) +
        " steps while its peers keep theirs. Refusing to serve: restart the whole job so that "
        "every task restores the newest checkpoint (a TFJob or Slurm job does; on a plain "
        "StatefulSet, delete the job's pods together)");
  }
  return Status::Ok();
}

}  // namespace deepfm::ps

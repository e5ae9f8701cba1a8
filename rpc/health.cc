#include "rpc/health.h"

#include <thread>

#include "proto/health.grpc.pb.h"

namespace deepfm::rpc {

Status WaitForServing(const std::string& address, const Security& security,
                      std::chrono::milliseconds timeout, const std::function<bool()>& alive) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer";
  while (true) {
    // A fresh channel per try, with its own subchannel: a refused connection
    // would otherwise put the shared subchannel into gRPC's reconnect
    // backoff, which waits seconds after the server is already up.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
    auto channel = grpc::CreateCustomChannel(address, security.ChannelCredentials(), args);
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    const grpc::Status s = stub->Check(&ctx, req, &resp);
    if (s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING)
      return Status::Ok();
    last = s.ok() ? "status " + std::to_string(resp.status()) : s.error_message();
    if (alive && !alive()) return Status(Code::kUnavailable, address + " stopped before it served");
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Code::kUnavailable, address + " did not report SERVING within " +
                                            std::to_string(timeout.count()) + " ms (last: " + last +
                                            ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace deepfm::rpc

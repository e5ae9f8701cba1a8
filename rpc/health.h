// Readiness through gRPC's standard health service (grpc.health.v1): every
// server of the job enables gRPC's built-in one, so the launcher, a
// Kubernetes gRPC probe or grpc_health_probe can ask whether it serves.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"
#include "rpc/security.h"

namespace deepfm::rpc {

// Asks `address` until it answers SERVING or `timeout` passes. Returns
// UNAVAILABLE naming the address and the last error when it never did.
// `alive`, when given, is polled between tries: returning false stops the
// wait at once (the process that should be listening has died).
Status WaitForServing(const std::string& address, const Security& security,
                      std::chrono::milliseconds timeout,
                      const std::function<bool()>& alive = nullptr);

}  // namespace deepfm::rpc

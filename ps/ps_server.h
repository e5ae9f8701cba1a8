// PsServer: serves one Shard over gRPC. Start() binds and returns once the
// port is listening; Shutdown() (or a client's Shutdown RPC) stops it in
// order: no new calls, in-flight calls finish, then Wait() returns.
//
// Every RPC is checked against the job's token first (rpc::Security), and a
// call that fails the check changes nothing. gRPC's standard health service
// (grpc.health.v1) answers SERVING once the server is up; it needs no token,
// so probes work, and tells nothing but that.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "obs/rpc_latency.h"
#include "ps/shard.h"
#include "rpc/security.h"

namespace deepfm::ps {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  int port = 0;                             // 0 picks a free port
  int threads = 2;                          // handler threads (sync server pollers)
  int max_message_bytes = 512 << 20;        // both directions
  rpc::Security security;                   // token and TLS; default: neither
  // Save writes only below this folder (a relative name, no ".."); empty
  // refuses every Save.
  std::string checkpoint_root;
  // Time in each handler, per method, for the Prometheus page; null: not
  // measured. Must outlive the server's handlers (until Wait() returns).
  obs::RpcLatency* rpc_latency = nullptr;
};

class PsServer {
 public:
  // Takes ownership of `shard`. On failure returns null and sets *status.
  static std::unique_ptr<PsServer> Start(const ServerOptions& options, std::unique_ptr<Shard> shard,
                                         Status* status);
  ~PsServer();

  int port() const { return port_; }
  std::string address() const;
  Shard& shard() { return *shard_; }

  // Blocks until Shutdown() or a Shutdown RPC has stopped the server.
  void Wait();
  // Idempotent; safe from any thread except a gRPC handler (the RPC defers it).
  void Shutdown();
  // Starts an orderly shutdown on a helper thread and returns at once: for
  // gRPC handlers and signal-watching threads, which must not block on it.
  void RequestShutdown();

  // The RPC methods, as ServerOptions::rpc_latency labels them.
  static std::vector<std::string> Methods();

 private:
  class Service;
  PsServer() = default;

  ServerOptions options_;
  std::unique_ptr<Shard> shard_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool stopping_ = false;
  std::thread stopper_;
};

// Maps a library status to the gRPC status the service returns.
grpc::Status ToGrpc(const Status& s);

}  // namespace deepfm::ps

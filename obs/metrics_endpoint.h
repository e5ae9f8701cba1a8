// The Prometheus page of one process (`--metrics_port`): prometheus-cpp's
// pull exposer serving /metrics in the text exposition format, with this
// process's registry and any collectors added to it.
//
// Authentication: when the job has a token, every scrape must carry it as
// the HTTP basic-auth password (any user name); Prometheus's scrape config
// says `basic_auth: {username: deepfm, password_file: <token file>}`. A
// scrape without it gets 401 and reads nothing. The page only reads.
//
// TLS: when the job has certificates (--tls_cert, --tls_key) the page is
// HTTPS only, with the task's certificate, as its gRPC server is; the
// scrape config then says `scheme: https` and `tls_config: {ca_file: ...}`.
//
// Where it listens: `bind` as the task's gRPC server does (loopback for a
// loopback task). Listening beyond loopback without a token is refused
// unless the caller waived it (--insecure), as for the shards.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "rpc/security.h"

namespace prometheus {
class Exposer;
}
namespace deepfm::obs {
class TlsFront;
}

namespace deepfm::obs {

struct MetricsEndpointOptions {
  std::string bind = "127.0.0.1";
  int port = 0;          // 0: a free port (tests); the tasks always name one
  rpc::Security security;  // the token a scrape must carry
  // The task's own certificate (its job security): HTTPS when it has one.
  rpc::Security tls;
  bool insecure = false;  // allow a non-loopback bind without a token
};

class MetricsEndpoint {
 public:
  // Listens, or fails with a message naming the address (port in use, bad
  // address) and the flag to change.
  static Status Start(const MetricsEndpointOptions& options, std::unique_ptr<MetricsEndpoint>* out);
  ~MetricsEndpoint();

  // Metrics the process updates as it works (counters, histograms).
  prometheus::Registry& registry() { return *registry_; }
  // A collector read at every scrape, kept until the endpoint goes: what it
  // reads must outlive the endpoint.
  void Add(std::shared_ptr<prometheus::Collectable> collectable);

  int port() const { return port_; }
  std::string address() const;
  bool tls() const { return tls_; }
  std::string url() const;  // http(s)://address/metrics

 private:
  MetricsEndpoint() = default;
  std::string bind_;
  int port_ = 0;
  bool tls_ = false;
  int backend_port_ = 0;  // civetweb's loopback port behind the TLS front
  std::unique_ptr<TlsFront> tls_front_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectors_;
  // Last: stopped first, so no scrape runs while the rest is destroyed.
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace deepfm::obs

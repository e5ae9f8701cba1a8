#include "obs/metrics_endpoint.h"

#include <prometheus/exposer.h>

#include <exception>

namespace deepfm::obs {

namespace {

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" ||
         host.rfind("127.", 0) == 0;
}

}  // namespace

Status MetricsEndpoint::Start(const MetricsEndpointOptions& o, std::unique_ptr<MetricsEndpoint>* out) {
  if (o.port < 0 || o.port > 65535) {
    return InvalidArgument("--metrics_port=" + std::to_string(o.port) + ": not a port (0..65535)");
  }
  if (!IsLoopback(o.bind) && !o.security.has_token() && !o.insecure) {
    return FailedPrecondition("the metrics page would listen on " + o.bind + ":" +
                              std::to_string(o.port) +
                              " without a token: give --auth_token_file, or --insecure to let "
                              "anyone reaching the port read the job's metrics");
  }
  std::unique_ptr<MetricsEndpoint> e(new MetricsEndpoint());
  e->bind_ = o.bind;
  e->registry_ = std::make_shared<prometheus::Registry>();
  // civetweb writes "[::]:p" for IPv6 binds; ours are IPv4 or host names.
  const std::string addr = o.bind + ":" + std::to_string(o.port);
  try {
    // One thread is enough for a scrape every few seconds, and leaves the
    // cores to training.
    e->exposer_ = std::make_unique<prometheus::Exposer>(addr, /*num_threads=*/1);
  } catch (const std::exception& ex) {
    return Status(Code::kUnavailable, "the metrics page cannot listen on " + addr + " (" +
                                          ex.what() + "); choose another --metrics_port");
  }
  if (o.security.has_token()) {
    rpc::Security security = o.security;
    e->exposer_->RegisterAuth(
        [security](const std::string& /*user*/, const std::string& password) {
          return security.TokenMatches(password);
        },
        "deepfm");
  }
  e->exposer_->RegisterCollectable(e->registry_);
  const std::vector<int> ports = e->exposer_->GetListeningPorts();
  e->port_ = ports.empty() ? o.port : ports.front();
  *out = std::move(e);
  return Status::Ok();
}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::Add(std::shared_ptr<prometheus::Collectable> c) {
  exposer_->RegisterCollectable(c);
  collectors_.push_back(std::move(c));
}

std::string MetricsEndpoint::address() const { return bind_ + ":" + std::to_string(port_); }

}  // namespace deepfm::obs

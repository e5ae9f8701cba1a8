#include "obs/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

namespace deepfm::obs {

namespace {

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" ||
         host.rfind("127.", 0) == 0;
}

// Opens and closes one connection to host:port (an IPv4 address; the
// wildcard address means this host).
void Knock(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (host == "0.0.0.0" || inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  (void)connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  close(fd);
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

MetricsEndpoint::~MetricsEndpoint() {
  if (!exposer_) return;
  // civetweb's listener checks its stop flag only between polls of 2 s: a
  // connection wakes it at once, so the task exits without that wait.
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    while (!stopped.load()) {
      Knock(bind_, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  exposer_.reset();
  stopped = true;
  knocker.join();
}

void MetricsEndpoint::Add(std::shared_ptr<prometheus::Collectable> c) {
  exposer_->RegisterCollectable(c);
  collectors_.push_back(std::move(c));
}

std::string MetricsEndpoint::address() const { return bind_ + ":" + std::to_string(port_); }

}  // namespace deepfm::obs

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

#include "obs/tls_front.h"

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
  // One thread is enough for a scrape every few seconds, and leaves the
  // cores to training. With the job's certificate, civetweb serves a
  // loopback port only and a TLS front (obs/tls_front.h) serves the page's
  // address: the page is HTTPS only.
  const std::string civet_addr = o.tls.tls() ? "127.0.0.1:0" : addr;
  try {
    e->exposer_ = std::make_unique<prometheus::Exposer>(civet_addr, /*num_threads=*/1);
  } catch (const std::exception& ex) {
    return Status(Code::kUnavailable, "the metrics page cannot listen on " + civet_addr + " (" +
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
  if (o.tls.tls()) {
    e->backend_port_ = e->port_;
    Status s = TlsFront::Start(o.bind, o.port, e->backend_port_, o.tls.cert_pem(), o.tls.key_pem(),
                               &e->tls_front_);
    if (!s.ok()) return s;
    e->port_ = e->tls_front_->port();
    e->tls_ = true;
  }
  *out = std::move(e);
  return Status::Ok();
}

MetricsEndpoint::~MetricsEndpoint() {
  tls_front_.reset();  // no scrape reaches civetweb from here on
  if (!exposer_) return;
  const std::string civet_host = tls_ ? "127.0.0.1" : bind_;
  const int civet_port = tls_ ? backend_port_ : port_;
  // civetweb's listener checks its stop flag only between polls of 2 s: a
  // connection wakes it at once, so the task exits without that wait.
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    while (!stopped.load()) {
      Knock(civet_host, civet_port);
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

std::string MetricsEndpoint::url() const {
  return std::string(tls_ ? "https" : "http") + "://" + address() + "/metrics";
}

}  // namespace deepfm::obs

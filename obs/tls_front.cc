#include "obs/tls_front.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace deepfm::obs {
namespace {

constexpr int kMaxConnections = 8;
constexpr int kIdleMs = 30000;

std::string SslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// The certificate, its chain and the key from PEM text into ctx.
Status LoadIdentity(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem) {
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  bool ok = cert && SSL_CTX_use_certificate(ctx, cert) == 1;
  X509_free(cert);
  while (ok) {
    X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (!extra) break;
    if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) {  // takes ownership on success
      X509_free(extra);
      ok = false;
    }
  }
  BIO_free(bio);
  ERR_clear_error();  // the chain loop ends on "no start line"
  if (!ok) return InvalidArgument("the metrics page: cannot use --tls_cert: " + SslError());
  bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) return InvalidArgument("the metrics page: cannot use --tls_key: " + SslError());
  return Status::Ok();
}

void SetTimeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Status TlsFront::Start(const std::string& bind, int port, int backend_port,
                       const std::string& cert_pem, const std::string& key_pem,
                       std::unique_ptr<TlsFront>* out) {
  std::unique_ptr<TlsFront> f(new TlsFront());
  f->backend_port_ = backend_port;
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Internal("the metrics page: " + SslError());
  f->ctx_ = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  Status s = LoadIdentity(ctx, cert_pem, key_pem);
  if (!s.ok()) return s;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, bind.c_str(), &a.sin_addr) != 1) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    if (getaddrinfo(bind.c_str(), nullptr, &hints, &res) != 0 || !res) {
      return InvalidArgument("the metrics page: cannot resolve " + bind);
    }
    a.sin_addr = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
    freeaddrinfo(res);
  }
  f->listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(f->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (f->listen_fd_ < 0 || ::bind(f->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(f->listen_fd_, 16) != 0) {
    return Status(Code::kUnavailable, "the metrics page cannot listen on " + bind + ":" +
                                          std::to_string(port) + " (" + std::strerror(errno) +
                                          "); choose another --metrics_port");
  }
  socklen_t len = sizeof(a);
  getsockname(f->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  f->port_ = ntohs(a.sin_port);
  TlsFront* raw = f.get();
  f->acceptor_ = std::thread([raw] { raw->AcceptLoop(); });
  *out = std::move(f);
  return Status::Ok();
}

TlsFront::~TlsFront() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (int fd : open_) shutdown(fd, SHUT_RDWR);
    idle_.wait(lock, [this]() DEEPFM_REQUIRES(mu_) { return open_.empty(); });
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void TlsFront::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<int>(open_.size()) >= kMaxConnections) continue;
    }
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    open_.insert(client);
    std::thread([this, client] { Serve(client); }).detach();
  }
}

void TlsFront::Serve(int client) {
  SetTimeouts(client, 5000);  // the handshake
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
  SSL_set_fd(ssl, client);
  int backend = -1;
  if (SSL_accept(ssl) == 1 && (backend = ConnectLoopback(backend_port_)) >= 0) {
    char buf[16384];
    auto idle_since = std::chrono::steady_clock::now();
    while (!stop_ &&
           std::chrono::steady_clock::now() - idle_since < std::chrono::milliseconds(kIdleMs)) {
      pollfd p[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
      const int ready = SSL_pending(ssl) > 0 ? 1 : poll(p, 2, 100);
      if (ready <= 0) continue;
      if (SSL_pending(ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        const int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) break;
        if (!WriteAll(backend, buf, static_cast<size_t>(n))) break;
        idle_since = std::chrono::steady_clock::now();
      }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = recv(backend, buf, sizeof(buf), 0);
        if (n <= 0) break;
        if (SSL_write(ssl, buf, static_cast<int>(n)) <= 0) break;
        idle_since = std::chrono::steady_clock::now();
      }
    }
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  if (backend >= 0) close(backend);
  // Closed under the lock, so the destructor never shuts down a descriptor
  // number that was closed and reused.
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(client);
  close(client);
  idle_.notify_all();
}

}  // namespace deepfm::obs

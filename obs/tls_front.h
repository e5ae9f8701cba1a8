// A TLS listener in front of a plain local HTTP server: what gives the
// metrics page HTTPS. Debian's civetweb 1.15 cannot serve TLS itself: it
// loads OpenSSL at run time and expects SSL_get_peer_certificate, which
// OpenSSL 3 no longer exports, and its workers then call a null function.
//
// Each connection is accepted with OpenSSL (TLS 1.2 or newer, the task's
// certificate and key), then carried byte for byte to and from a fresh
// connection to the backend's loopback port, both ways, until either side
// closes or 30 s pass idle. A plain-HTTP client fails the handshake and
// reaches nothing. At most 8 connections at once; more wait to be accepted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace deepfm::obs {

class TlsFront {
 public:
  // Listens on bind:port (port 0: a free one) and forwards to
  // 127.0.0.1:backend_port. The PEM texts are the certificate (then its
  // chain, if any) and the private key.
  static Status Start(const std::string& bind, int port, int backend_port,
                      const std::string& cert_pem, const std::string& key_pem,
                      std::unique_ptr<TlsFront>* out);
  // Stops accepting, cuts the open connections, joins every thread.
  ~TlsFront();
  int port() const { return port_; }

 private:
  TlsFront() = default;
  void AcceptLoop();
  void Serve(int client);

  void* ctx_ = nullptr;  // SSL_CTX
  int listen_fd_ = -1;
  int port_ = 0;
  int backend_port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  // Client sockets being served, each by a detached thread that removes its
  // own and signals `idle_` as its last act.
  std::set<int> open_ DEEPFM_GUARDED_BY(mu_);
  std::condition_variable idle_;
  std::thread acceptor_;
};

}  // namespace deepfm::obs

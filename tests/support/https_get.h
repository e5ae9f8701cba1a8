// An HTTPS GET to a loopback port with OpenSSL, verifying the server's
// certificate against a CA (PEM text): what a Prometheus scrape with
// `scheme: https` and `tls_config: {ca_file}` does. Bounded like HttpGet.
#pragma once

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <string>

#include "tests/support/http_get.h"

namespace deepfm::testing_util {

struct HttpsReply : HttpReply {
  bool verified = false;  // the handshake completed and the certificate verified
  std::string tls_error;  // why not
};

inline HttpsReply HttpsGet(int port, const std::string& path, const std::string& ca_pem,
                           const std::string& password = "") {
  HttpsReply reply;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return reply;
  BIO* ca_bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  while (X509* cert = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
  }
  BIO_free(ca_bio);
  ERR_clear_error();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const int fd = ConnectLoopbackBounded(port);
  SSL* ssl = nullptr;
  if (fd >= 0) {
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) == 1 && SSL_get_verify_result(ssl) == X509_V_OK) {
      reply.verified = true;
      std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n";
      if (!password.empty()) req += "Authorization: Basic " + Base64("deepfm:" + password) + "\r\n";
      req += "\r\n";
      SSL_write(ssl, req.data(), static_cast<int>(req.size()));
      std::string all;
      char buf[65536];
      for (int n; (n = SSL_read(ssl, buf, sizeof(buf))) > 0;)
        all.append(buf, static_cast<size_t>(n));
      const size_t sp = all.find(' ');
      if (all.rfind("HTTP/", 0) == 0 && sp != std::string::npos) {
        reply.status = std::atoi(all.c_str() + sp + 1);
        const size_t end = all.find("\r\n\r\n");
        if (end != std::string::npos) reply.body = all.substr(end + 4);
      }
    } else {
      char err[256];
      ERR_error_string_n(ERR_get_error(), err, sizeof(err));
      reply.tls_error = err;
    }
  }
  if (ssl) {
    SSL_shutdown(ssl);
    SSL_free(ssl);
  }
  if (fd >= 0) close(fd);
  SSL_CTX_free(ctx);
  return reply;
}

}  // namespace deepfm::testing_util

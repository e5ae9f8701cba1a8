// How the job's processes authenticate and encrypt their RPCs.
//
// Token: every call carries gRPC metadata `authorization: Bearer <token>`
// (the usual convention, so standard clients and proxies work); a server
// given a token answers any call without it, or with another, with
// UNAUTHENTICATED before doing anything.
//
// TLS: gRPC's SSL credentials. A task with a certificate and key serves TLS
// and dials its peers with TLS; given a CA too, it requires and verifies the
// peer's certificate both ways (mutual TLS), else clients verify servers
// against the system's roots. A client checks the host name it dialled
// against the server certificate's names. deploy/tls/make_certs.sh makes a test CA,
// a certificate and a token.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace deepfm::rpc {

struct SecurityOptions {
  std::string auth_token_file;  // empty: no token
  std::string tls_cert;         // PEM files; empty: no TLS
  std::string tls_key;
  std::string tls_ca;
};

class Security {
 public:
  // Reads the files: a token of 16..4096 printable characters (surrounding
  // whitespace dropped), a certificate and key given together. Errors name
  // the flag and the file.
  static Status Load(const SecurityOptions& options, Security* out);
  // A fresh random token (for a local job), no TLS.
  static Security WithToken(std::string token);

  bool has_token() const { return !token_.empty(); }
  bool tls() const { return !cert_.empty(); }
  // This process's certificate and private key (PEM), for servers other
  // than gRPC's (the metrics page); empty without TLS.
  const std::string& cert_pem() const { return cert_; }
  const std::string& key_pem() const { return key_; }
  const std::string& token() const { return token_; }

  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  // For dialling a peer: TLS when this process has a certificate, else plaintext.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;
  // Adds the token (when there is one) to an outgoing call.
  void Authorize(grpc::ClientContext* ctx) const;
  // OK when the call carries this process's token (or there is none to
  // check); UNAUTHENTICATED otherwise, saying what was wrong but never the
  // token. The comparison takes the same time wherever the tokens differ.
  grpc::Status Check(const grpc::ServerContext& ctx) const;
  // True when `presented` is this process's token, or there is none to
  // check; for endpoints that are not gRPC (the metrics page's basic auth).
  // Takes the same time wherever the tokens differ.
  bool TokenMatches(const std::string& presented) const;

 private:
  std::string token_;
  std::string cert_, key_, ca_;
};

// A random 32-byte token, hex-encoded, from the system's CSPRNG.
std::string RandomToken();

}  // namespace deepfm::rpc

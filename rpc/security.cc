#include "rpc/security.h"

#include <sys/random.h>

#include <cstdio>

#include "common/checkpoint_manifest.h"

namespace deepfm::rpc {
namespace {

constexpr char kBearer[] = "Bearer ";

Status ReadPem(const std::string& flag, const std::string& path, std::string* out) {
  Status s = ReadFile(path, out);
  if (!s.ok()) return InvalidArgument("--" + flag + "=" + path + ": cannot read it");
  if (out->find("-----BEGIN ") == std::string::npos) {
    return InvalidArgument("--" + flag + "=" + path + ": not a PEM file (no -----BEGIN line)");
  }
  return Status::Ok();
}

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  // Length is not secret (tokens have a fixed format); the contents are.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::string RandomToken() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string hex;
  char buf[3];
  for (unsigned char b : bytes) {
    snprintf(buf, sizeof(buf), "%02x", b);
    hex += buf;
  }
  return hex;
}

Status Security::Load(const SecurityOptions& o, Security* out) {
  *out = Security();
  if (!o.auth_token_file.empty()) {
    std::string text;
    if (!ReadFile(o.auth_token_file, &text).ok()) {
      return InvalidArgument("--auth_token_file=" + o.auth_token_file + ": cannot read it");
    }
    const size_t b = text.find_first_not_of(" \t\r\n");
    const size_t e = text.find_last_not_of(" \t\r\n");
    const std::string token = b == std::string::npos ? "" : text.substr(b, e - b + 1);
    if (token.size() < 16 || token.size() > 4096) {
      return InvalidArgument("--auth_token_file=" + o.auth_token_file +
                             ": the token must have 16 to 4096 "
                             "characters, this one has " +
                             std::to_string(token.size()));
    }
    for (char c : token) {
      if (c < 0x21 || c > 0x7e) {
        return InvalidArgument("--auth_token_file=" + o.auth_token_file +
                               ": the token must be printable ASCII without spaces");
      }
    }
    out->token_ = token;
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return InvalidArgument("--tls_cert and --tls_key go together: give both or neither");
  }
  if (!o.tls_cert.empty()) {
    Status s = ReadPem("tls_cert", o.tls_cert, &out->cert_);
    if (s.ok()) s = ReadPem("tls_key", o.tls_key, &out->key_);
    if (!s.ok()) return s;
  }
  if (!o.tls_ca.empty()) {
    if (o.tls_cert.empty()) {
      return InvalidArgument(
          "--tls_ca needs --tls_cert and --tls_key: every task serves and dials with TLS");
    }
    Status s = ReadPem("tls_ca", o.tls_ca, &out->ca_);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Security Security::WithToken(std::string token) {
  Security s;
  s.token_ = std::move(token);
  return s;
}

std::shared_ptr<grpc::ServerCredentials> Security::ServerCredentials() const {
  if (!tls()) return grpc::InsecureServerCredentials();
  // With a CA, mutual TLS: a peer without a certificate the CA signed is
  // turned away during the handshake.
  grpc::SslServerCredentialsOptions o(
      ca_.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                  : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = ca_;
  o.pem_key_cert_pairs.push_back({key_, cert_});
  return grpc::SslServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> Security::ChannelCredentials() const {
  if (!tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_;  // empty: the system's roots (a publicly signed certificate)
  o.pem_private_key = key_;
  o.pem_cert_chain = cert_;
  return grpc::SslCredentials(o);
}

void Security::Authorize(grpc::ClientContext* ctx) const {
  if (has_token()) ctx->AddMetadata("authorization", kBearer + token_);
}

bool Security::TokenMatches(const std::string& presented) const {
  return token_.empty() || ConstantTimeEqual(presented, token_);
}

grpc::Status Security::Check(const grpc::ServerContext& ctx) const {
  if (!has_token()) return grpc::Status::OK;
  const auto& md = ctx.client_metadata();
  const auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this server requires 'authorization: Bearer <token>' (--auth_token_file); "
                        "the call had none");
  }
  const std::string value(it->second.data(), it->second.size());
  if (value.rfind(kBearer, 0) != 0 ||
      !ConstantTimeEqual(value.substr(sizeof(kBearer) - 1), token_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the call's bearer token is not this job's (--auth_token_file)");
  }
  return grpc::Status::OK;
}

}  // namespace deepfm::rpc

// The job's RPC security against real servers: every call without the token,
// or with another, is UNAUTHENTICATED and changes nothing; TLS with a CA is
// mutual (a client without a certificate the CA signed is turned away); and
// the flags' files are checked with errors naming the flag.
#include "rpc/security.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/checkpoint_manifest.h"
#include "proto/ps.grpc.pb.h"
#include "ps/ps_server.h"
#include "rpc/health.h"
#include "tests/support/near_miss.h"
#include "worker/ps_client.h"

namespace deepfm::rpc {
namespace {

namespace fs = std::filesystem;

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::path(::testing::TempDir()) / ("security_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    // Two independent CAs: the job's, and a stranger's.
    for (const char* name : {"job", "other"}) {
      const std::string cmd =
          std::string(DEEPFM_MAKE_CERTS) + " " + (*dir_ / name).string() + " localhost > /dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed: is openssl installed?";
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  static SecurityOptions Files(const std::string& ca_name, bool token, bool tls,
                               bool client_cert = true) {
    SecurityOptions o;
    if (token) o.auth_token_file = (*dir_ / ca_name / "token").string();
    if (tls) {
      if (client_cert) {
        o.tls_cert = (*dir_ / ca_name / "tls.crt").string();
        o.tls_key = (*dir_ / ca_name / "tls.key").string();
      }
      o.tls_ca = (*dir_ / ca_name / "ca.pem").string();
    }
    return o;
  }
  static Security Load(const SecurityOptions& o) {
    Security s;
    Status st = Security::Load(o, &s);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return s;
  }

  void StartServer(const Security& security) {
    ps::ShardOptions so;
    so.optimizer.type = ps::OptimizerType::kSgd;
    Status s;
    auto shard = ps::Shard::Create(so, &s);
    ps::ServerOptions opts;
    opts.security = security;
    server_ = ps::PsServer::Start(opts, std::move(shard), &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    address_ = "localhost:" + std::to_string(server_->port());
  }

  // A raw call with exactly the metadata given (no PsClient help).
  grpc::Status RawRegister(const std::shared_ptr<grpc::ChannelCredentials>& creds,
                           const std::string& auth) {
    auto stub = ps::ParameterServer::NewStub(grpc::CreateChannel(address_, creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!auth.empty()) ctx.AddMetadata("authorization", auth);
    ps::RegisterTableRequest req;
    req.mutable_spec()->set_name("emb");
    req.mutable_spec()->set_dim(4);
    ps::RegisterTableResponse resp;
    return stub->RegisterTable(&ctx, req, &resp);
  }

  Status ClientPull(const Security& security) {
    PsClientOptions co;
    co.hosts = {address_};
    co.security = security;
    co.connect_timeout_ms = 1000;
    co.max_retries = 0;
    std::unique_ptr<PsClient> client;
    Status s = PsClient::Connect(co, &client);
    if (!s.ok()) return s;
    ps::TableSpec spec;
    spec.set_name("emb");
    spec.set_dim(4);
    int table = -1;
    s = client->RegisterTable(spec, &table);
    if (!s.ok()) return s;
    const uint64_t key = 7;
    float row[4];
    return client->Pull(table, &key, 1, row, {}, false, nullptr);
  }

  static fs::path* dir_;
  std::unique_ptr<ps::PsServer> server_;
  std::string address_;
};
fs::path* SecurityTest::dir_ = nullptr;

TEST_F(SecurityTest, CallsWithoutTheTokenAreRefusedAndChangeNothing) {
  const Security security = Load(Files("job", true, false));
  ASSERT_TRUE(security.has_token());
  StartServer(security);
  const auto plain = grpc::InsecureChannelCredentials();
  grpc::Status s = RawRegister(plain, "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("authorization: Bearer"), std::string::npos)
      << s.error_message();
  s = RawRegister(plain, "Bearer " + std::string(64, 'a'));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message().find(security.token()), std::string::npos)
      << "the error leaks the token";
  s = RawRegister(plain, security.token());  // no "Bearer "
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Tokens one byte off anywhere, a prefix, one byte longer.
  for (const std::string& near : testing_util::NearMisses(security.token())) {
    EXPECT_EQ(RawRegister(plain, "Bearer " + near).error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << "token '" << near << "'";
    EXPECT_FALSE(security.TokenMatches(near)) << "token '" << near << "'";
  }
  EXPECT_TRUE(security.TokenMatches(security.token()));
  EXPECT_TRUE(server_->shard().tables().empty()) << "a refused call registered a table";
  // Shutdown needs the token too: the server keeps serving.
  auto stub = ps::ParameterServer::NewStub(grpc::CreateChannel(address_, plain));
  grpc::ClientContext ctx;
  ps::ShutdownResponse sr;
  EXPECT_EQ(stub->Shutdown(&ctx, ps::ShutdownRequest(), &sr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // With the token, through the client the workers use.
  Status pulled = ClientPull(security);
  EXPECT_TRUE(pulled.ok()) << pulled.ToString();
  EXPECT_EQ(server_->shard().tables().size(), 1u);
  // The health service answers without a token (probes), and says only that.
  EXPECT_TRUE(WaitForServing(address_, Security(), std::chrono::seconds(5)).ok());
}

TEST_F(SecurityTest, MutualTlsWithTheJobsCa) {
  const Security security = Load(Files("job", true, true));
  ASSERT_TRUE(security.tls());
  StartServer(security);
  Status s = ClientPull(security);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // Plaintext to a TLS server fails.
  Security token_only = Load(Files("job", true, false));
  EXPECT_FALSE(ClientPull(token_only).ok());
  // A client that trusts the job's CA but has no certificate is turned away
  // in the handshake (mutual TLS), token or not.
  grpc::SslCredentialsOptions no_cert;
  ASSERT_TRUE(ReadFile((*dir_ / "job" / "ca.pem").string(), &no_cert.pem_root_certs).ok());
  grpc::Status raw = RawRegister(grpc::SslCredentials(no_cert), "Bearer " + security.token());
  EXPECT_EQ(raw.error_code(), grpc::StatusCode::UNAVAILABLE) << raw.error_message();
  EXPECT_TRUE(server_->shard().tables().size() == 1u)
      << "only the authorised pull registered a table";
  // A client whose certificate another CA signed is turned away, and so is
  // one that trusts another CA.
  EXPECT_FALSE(ClientPull(Load(Files("other", true, true))).ok());
  // Readiness works over TLS with the job's credentials.
  EXPECT_TRUE(WaitForServing(address_, security, std::chrono::seconds(5)).ok());
  EXPECT_FALSE(
      WaitForServing(address_, Load(Files("other", false, true)), std::chrono::milliseconds(500))
          .ok());
}

TEST_F(SecurityTest, BadFilesNameTheFlag) {
  Security s;
  SecurityOptions o;
  o.auth_token_file = "/nonexistent/token";
  Status st = Security::Load(o, &s);
  EXPECT_NE(st.message().find("--auth_token_file=/nonexistent/token"), std::string::npos)
      << st.message();
  const std::string short_token = (*dir_ / "short").string();
  ASSERT_TRUE(WriteFileAtomic(short_token, "abc\n").ok());
  o.auth_token_file = short_token;
  st = Security::Load(o, &s);
  EXPECT_NE(st.message().find("16 to 4096 characters, this one has 3"), std::string::npos)
      << st.message();
  o = SecurityOptions();
  o.tls_cert = (*dir_ / "job" / "tls.crt").string();
  st = Security::Load(o, &s);
  EXPECT_NE(st.message().find("--tls_cert and --tls_key go together"), std::string::npos)
      << st.message();
  o.tls_key = (*dir_ / "job" / "token").string();  // not PEM
  st = Security::Load(o, &s);
  EXPECT_NE(st.message().find("--tls_key="), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not a PEM file"), std::string::npos) << st.message();
  o = SecurityOptions();
  o.tls_ca = (*dir_ / "job" / "ca.pem").string();
  st = Security::Load(o, &s);
  EXPECT_NE(st.message().find("--tls_ca needs --tls_cert"), std::string::npos) << st.message();
}

TEST(RandomTokenTest, FreshAndLongEnough) {
  const std::string a = RandomToken(), b = RandomToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(HealthTest, NothingListeningIsUnavailableNamingTheAddress) {
  const auto start = std::chrono::steady_clock::now();
  Status s = WaitForServing("127.0.0.1:1", Security(), std::chrono::milliseconds(300));
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("127.0.0.1:1"), std::string::npos) << s.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // A dead process ends the wait at once.
  s = WaitForServing("127.0.0.1:1", Security(), std::chrono::seconds(60), [] { return false; });
  EXPECT_NE(s.message().find("stopped before it served"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace deepfm::rpc

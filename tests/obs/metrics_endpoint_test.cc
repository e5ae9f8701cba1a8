#include "obs/metrics_endpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <prometheus/counter.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/checkpoint_manifest.h"
#include "tests/support/http_get.h"
#include "tests/support/https_get.h"
#include "tests/support/near_miss.h"

namespace deepfm::obs {
namespace {

using testing_util::HttpGet;
using testing_util::PromValue;

const char* kToken = "0123456789abcdef0123456789abcdef";

std::unique_ptr<MetricsEndpoint> StartPage(const std::string& token) {
  MetricsEndpointOptions o;
  if (!token.empty()) o.security = rpc::Security::WithToken(token);
  std::unique_ptr<MetricsEndpoint> page;
  const Status s = MetricsEndpoint::Start(o, &page);
  EXPECT_TRUE(s.ok()) << s.message();
  return page;
}

// A task with a metrics page exits as promptly as one without: civetweb's
// listener polls for 2 s between checks of its stop flag, and stopping the
// page wakes it instead of waiting that out. Scraped first, and idle.
TEST(MetricsEndpointTest, StopsPromptly) {
  for (int scrapes : {0, 1}) {
    auto page = StartPage("");
    ASSERT_TRUE(page);
    if (scrapes) {
      ASSERT_EQ(HttpGet(page->port(), "/metrics").status, 200);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto start = std::chrono::steady_clock::now();
    page.reset();
    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    EXPECT_LT(ms, 500) << "stopping the page took " << ms << " ms (" << scrapes << " scrapes)";
  }
}

// A job with certificates serves its page over HTTPS only, with the task's
// certificate: a scrape that trusts the job's CA reads it (with the token),
// one that trusts another CA fails the handshake, plain HTTP reads nothing.
TEST(MetricsEndpointTest, ServesHttpsWithTheTasksCertificateWhenTheJobHasOne) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("metrics_tls_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* name : {"job", "other"}) {
    const std::string cmd =
        std::string(DEEPFM_MAKE_CERTS) + " " + (dir / name).string() + " localhost > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  rpc::SecurityOptions so;
  so.tls_cert = (dir / "job" / "tls.crt").string();
  so.tls_key = (dir / "job" / "tls.key").string();
  so.tls_ca = (dir / "job" / "ca.pem").string();
  rpc::Security job;
  ASSERT_TRUE(rpc::Security::Load(so, &job).ok());
  MetricsEndpointOptions o;
  o.security = rpc::Security::WithToken(kToken);
  o.tls = job;
  std::unique_ptr<MetricsEndpoint> page;
  const Status s = MetricsEndpoint::Start(o, &page);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(page->tls());
  EXPECT_EQ(page->url().rfind("https://", 0), 0u) << page->url();
  auto& c = prometheus::BuildCounter().Name("deepfm_tls_total").Help("x").Register(page->registry());
  c.Add({}).Increment(3);
  std::string ca, other_ca;
  ASSERT_TRUE(ReadFile((dir / "job" / "ca.pem").string(), &ca).ok());
  ASSERT_TRUE(ReadFile((dir / "other" / "ca.pem").string(), &other_ca).ok());
  const auto r = testing_util::HttpsGet(page->port(), "/metrics", ca, kToken);
  EXPECT_TRUE(r.verified) << r.tls_error;
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(PromValue(r.body, "deepfm_tls_total", {}), 3);
  EXPECT_EQ(testing_util::HttpsGet(page->port(), "/metrics", ca, "").status, 401);
  const auto stranger = testing_util::HttpsGet(page->port(), "/metrics", other_ca, kToken);
  EXPECT_FALSE(stranger.verified);
  EXPECT_NE(stranger.status, 200);
  const auto plain = HttpGet(page->port(), "/metrics", kToken);
  EXPECT_NE(plain.status, 200);
  EXPECT_EQ(plain.body.find("deepfm_tls_total"), std::string::npos);
  // Stopping is prompt with TLS too.
  const auto start = std::chrono::steady_clock::now();
  page.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  fs::remove_all(dir);
}

TEST(MetricsEndpointTest, ServesTheRegistryInTextFormat) {
  auto page = StartPage("");
  ASSERT_TRUE(page);
  auto& c = prometheus::BuildCounter().Name("deepfm_test_total").Help("x").Register(page->registry());
  c.Add({{"task", "ps:0"}}).Increment(7);
  ASSERT_GT(page->port(), 0);
  const auto r = HttpGet(page->port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(PromValue(r.body, "deepfm_test_total", {{"task", "ps:0"}}), 7);
  EXPECT_NE(r.body.find("# TYPE deepfm_test_total counter"), std::string::npos) << r.body;
}

TEST(MetricsEndpointTest, AScrapeWithoutTheTokenIsRefusedAndReadsNothing) {
  auto page = StartPage(kToken);
  ASSERT_TRUE(page);
  prometheus::BuildCounter().Name("deepfm_secret_total").Help("x").Register(page->registry())
      .Add({}).Increment(3);
  // Every near miss (a byte off at the start, middle or end, a prefix, one
  // byte more, none).
  for (const std::string& wrong : testing_util::NearMisses(kToken)) {
    const auto r = HttpGet(page->port(), "/metrics", wrong);
    EXPECT_EQ(r.status, 401) << "password '" << wrong << "'";
    EXPECT_EQ(r.body.find("deepfm_secret_total"), std::string::npos) << r.body;
  }
  const auto ok = HttpGet(page->port(), "/metrics", kToken);
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(PromValue(ok.body, "deepfm_secret_total"), 3);
}

TEST(MetricsEndpointTest, ListeningBeyondLoopbackNeedsATokenOrAWaiver) {
  MetricsEndpointOptions o;
  o.bind = "0.0.0.0";
  std::unique_ptr<MetricsEndpoint> page;
  Status s = MetricsEndpoint::Start(o, &page);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("--insecure"), std::string::npos) << s.message();
  EXPECT_FALSE(page);
}

TEST(MetricsEndpointTest, APortInUseIsAnErrorNamingTheFlag) {
  auto first = StartPage("");
  ASSERT_TRUE(first);
  MetricsEndpointOptions o;
  o.port = first->port();
  std::unique_ptr<MetricsEndpoint> second;
  const Status s = MetricsEndpoint::Start(o, &second);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("--metrics_port"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace deepfm::obs

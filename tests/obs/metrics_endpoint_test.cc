#include "obs/metrics_endpoint.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "tests/support/http_get.h"
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

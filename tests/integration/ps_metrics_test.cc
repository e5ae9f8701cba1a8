// A shard task (RunPsTask, as `deepfm ps` runs it) with --metrics_port:
// scraped over HTTP after real pulls and pushes, its page says what its
// Stats RPC says, and its handler histograms counted every call.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "ps/ps_task.h"
#include "tests/support/free_port.h"
#include "tests/support/http_get.h"
#include "worker/ps_client.h"

namespace deepfm {
namespace {

using testing_util::HttpGet;
using testing_util::PromValue;

const char* kToken = "fedcba9876543210fedcba9876543210";

TEST(PsMetricsTest, TheShardsPageMatchesItsStatsAndTimesEveryCall) {
  ps::PsTaskOptions o;
  o.name = "ps:0";
  o.restore = false;
  o.shard.optimizer.type = ps::OptimizerType::kAdagrad;
  o.server.port = testing_util::FreeLoopbackPort();
  o.server.security = rpc::Security::WithToken(kToken);
  o.metrics_port = testing_util::FreeLoopbackPort();
  o.metrics_security = rpc::Security::WithToken(kToken);
  ASSERT_NE(o.server.port, o.metrics_port);
  int code = -1;
  std::thread task([&] { code = ps::RunPsTask(o); });

  PsClientOptions co;
  co.hosts = {"127.0.0.1:" + std::to_string(o.server.port)};
  co.security = rpc::Security::WithToken(kToken);
  co.connect_timeout_ms = 20000;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  ASSERT_TRUE(s.ok()) << s.message();
  ps::TableSpec spec;
  spec.set_name("emb");
  spec.set_dim(4);
  int table = -1;
  ASSERT_TRUE(client->RegisterTable(spec, &table).ok());
  std::vector<uint64_t> keys(300);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = i * 7919 + 1;
  std::vector<float> rows(keys.size() * 4), grads(keys.size() * 4, 0.1f);
  for (int step = 0; step < 5; ++step) {
    ASSERT_TRUE(client->Pull(table, keys.data(), keys.size(), rows.data(), {}, false, nullptr).ok());
    int64_t gs = 0;
    ASSERT_TRUE(client->Push(table, keys.data(), 200, grads.data(), {}, true, &gs).ok());
  }

  const auto page = HttpGet(o.metrics_port, "/metrics", kToken);
  std::vector<ps::StatsResponse> stats;
  ASSERT_TRUE(client->Stats(&stats).ok());
  ASSERT_EQ(page.status, 200);
  SCOPED_TRACE(page.body);
  const ps::StatsResponse& st = stats.at(0);
  ASSERT_EQ(st.pulled_keys(), 1500u);
  ASSERT_EQ(st.pushed_keys(), 1000u);
  const std::map<std::string, std::string> t{{"task", "ps:0"}};
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_global_step", t), st.global_step());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_pull_requests_total", t), st.pull_requests());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_push_requests_total", t), st.push_requests());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_pulled_keys_total", t), st.pulled_keys());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_pushed_keys_total", t), st.pushed_keys());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_bytes_in_total", t), st.bytes_in());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_bytes_out_total", t), st.bytes_out());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_table_rows", {{"task", "ps:0"}, {"table", "emb"}}),
            st.tables(0).rows());
  EXPECT_EQ(PromValue(page.body, "deepfm_ps_table_bytes", {{"task", "ps:0"}, {"table", "emb"}}),
            st.tables(0).bytes());
  auto calls = [&](const char* method) {
    return PromValue(page.body, "deepfm_rpc_server_seconds_count",
                     {{"task", "ps:0"}, {"method", method}});
  };
  EXPECT_EQ(calls("Pull"), 5);
  EXPECT_EQ(calls("Push"), 5);
  EXPECT_EQ(calls("RegisterTable"), 1);
  // Without the token the page answers nothing.
  EXPECT_EQ(HttpGet(o.metrics_port, "/metrics").status, 401);

  ASSERT_TRUE(client->ShutdownAll().ok());
  task.join();
  EXPECT_EQ(code, 0);
  // The page went with the task.
  EXPECT_EQ(HttpGet(o.metrics_port, "/metrics", kToken).status, 0);
}

}  // namespace
}  // namespace deepfm

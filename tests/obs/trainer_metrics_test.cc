#include "obs/trainer_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "tests/support/http_get.h"

namespace deepfm::obs {
namespace {

using testing_util::PromValue;

TEST(TrainerMetricsTest, EachStageAddsWhatItDid) {
  prometheus::Registry r;
  TrainerMetrics m(r, "chief:0");
  m.Pulled(/*rows=*/512, /*new_bad_rows=*/3, /*keys=*/900, /*sent=*/100, /*received=*/2000,
           /*read_s=*/0.001, /*dedup_s=*/0.002, /*pull_s=*/0.004);
  m.Pulled(512, 0, 100, 10, 200, 0.001, 0.002, 0.004);
  m.Pushed(/*keys=*/950, /*sent=*/3000, /*received=*/20, /*push_s=*/0.0003, /*global_step=*/17);
  m.Stepped(/*samples=*/512, /*loss=*/0.5, /*wait_s=*/0.001, /*compute_s=*/0.01, /*handoff_s=*/0);
  m.Stepped(256, 0.25, 0.002, 0.02, 0.0005);
  m.Rate(12345);
  const std::string page = prometheus::TextSerializer().Serialize(r.Collect());
  const std::map<std::string, std::string> t{{"task", "chief:0"}};
  EXPECT_EQ(PromValue(page, "deepfm_data_rows_total", t), 1024);
  EXPECT_EQ(PromValue(page, "deepfm_data_bad_rows_total", t), 3);
  EXPECT_EQ(PromValue(page, "deepfm_worker_keys_pulled_total", t), 1000);
  EXPECT_EQ(PromValue(page, "deepfm_worker_keys_pushed_total", t), 950);
  EXPECT_EQ(PromValue(page, "deepfm_worker_bytes_sent_total", t), 3110);
  EXPECT_EQ(PromValue(page, "deepfm_worker_bytes_received_total", t), 2220);
  EXPECT_EQ(PromValue(page, "deepfm_worker_steps_total", t), 2);
  EXPECT_EQ(PromValue(page, "deepfm_worker_samples_total", t), 768);
  EXPECT_EQ(PromValue(page, "deepfm_worker_loss", t), 0.25);
  EXPECT_EQ(PromValue(page, "deepfm_worker_global_step", t), 17);
  EXPECT_EQ(PromValue(page, "deepfm_worker_samples_per_second", t), 12345);
  auto stage = [&](const char* s) {
    auto l = t;
    l["stage"] = s;
    return PromValue(page, "deepfm_worker_stage_seconds_total", l);
  };
  EXPECT_DOUBLE_EQ(stage("compute"), 0.03);
  EXPECT_DOUBLE_EQ(stage("wait"), 0.003);
  EXPECT_DOUBLE_EQ(stage("pull"), 0.008);
  EXPECT_DOUBLE_EQ(stage("push"), 0.0003);
  // Step time: 11 ms and 22.5 ms; both under the 25.6 ms bucket, one under 12.8 ms.
  EXPECT_EQ(PromValue(page, "deepfm_worker_step_seconds_count", t), 2);
  auto le = [&](const char* b) {
    auto l = t;
    l["le"] = b;
    return PromValue(page, "deepfm_worker_step_seconds_bucket", l);
  };
  EXPECT_EQ(le("0.0128"), 1);
  EXPECT_EQ(le("0.0256"), 2);
  auto rpc = [&](const char* method) {
    auto l = t;
    l["method"] = method;
    return PromValue(page, "deepfm_rpc_client_seconds_count", l);
  };
  EXPECT_EQ(rpc("Pull"), 2);
  EXPECT_EQ(rpc("Push"), 1);
}

}  // namespace
}  // namespace deepfm::obs

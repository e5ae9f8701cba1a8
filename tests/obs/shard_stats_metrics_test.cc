#include "obs/shard_stats_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "tests/support/http_get.h"

namespace deepfm::obs {
namespace {

using testing_util::PromValue;

std::string Page(const ps::StatsResponse& s) {
  return prometheus::TextSerializer().Serialize(ShardStatsFamilies(s, "ps:1"));
}

TEST(ShardStatsMetricsTest, EveryCounterIsTheStatsValueWithTheTasksLabel) {
  ps::StatsResponse s;
  s.set_global_step(42);
  s.set_pull_requests(11);
  s.set_push_requests(12);
  s.set_pulled_keys(1300);
  s.set_pushed_keys(1400);
  s.set_bytes_in(15000);
  s.set_bytes_out(16000);
  s.set_duplicate_pushes(2);
  s.set_sweeps(5);
  s.set_memory_budget_bytes(1 << 20);
  s.set_memory_used_bytes(1000);
  s.set_memory_peak_bytes(2000);
  s.set_longest_sweep_hold_ms(3.5);
  s.set_process_rss_bytes(3 << 20);
  s.set_process_peak_rss_bytes(5 << 20);
  ps::TableStats* t = s.add_tables();
  t->set_name("emb");
  t->set_rows(77);
  t->set_bytes(7700);
  t->set_admitted(70);
  t->set_filtered_reads(8);
  t->set_filtered_grads(9);
  t->set_evicted_ttl(1);
  t->set_evicted_l2(2);
  t->set_evicted_budget(3);
  t->set_pending_shed(4);
  const std::string page = Page(s);
  const std::map<std::string, std::string> task{{"task", "ps:1"}};
  EXPECT_EQ(PromValue(page, "deepfm_ps_global_step", task), 42);
  EXPECT_EQ(PromValue(page, "deepfm_ps_pull_requests_total", task), 11);
  EXPECT_EQ(PromValue(page, "deepfm_ps_push_requests_total", task), 12);
  EXPECT_EQ(PromValue(page, "deepfm_ps_pulled_keys_total", task), 1300);
  EXPECT_EQ(PromValue(page, "deepfm_ps_pushed_keys_total", task), 1400);
  EXPECT_EQ(PromValue(page, "deepfm_ps_bytes_in_total", task), 15000);
  EXPECT_EQ(PromValue(page, "deepfm_ps_bytes_out_total", task), 16000);
  EXPECT_EQ(PromValue(page, "deepfm_ps_duplicate_pushes_total", task), 2);
  EXPECT_EQ(PromValue(page, "deepfm_ps_sweeps_total", task), 5);
  EXPECT_EQ(PromValue(page, "deepfm_ps_memory_budget_bytes", task), 1 << 20);
  EXPECT_EQ(PromValue(page, "deepfm_ps_memory_used_bytes", task), 1000);
  EXPECT_EQ(PromValue(page, "deepfm_ps_memory_peak_bytes", task), 2000);
  EXPECT_DOUBLE_EQ(PromValue(page, "deepfm_ps_longest_sweep_hold_seconds", task), 0.0035);
  EXPECT_EQ(PromValue(page, "deepfm_ps_process_resident_bytes", task), 3 << 20);
  EXPECT_EQ(PromValue(page, "deepfm_ps_process_peak_resident_bytes", task), 5 << 20);
  const std::map<std::string, std::string> table{{"task", "ps:1"}, {"table", "emb"}};
  EXPECT_EQ(PromValue(page, "deepfm_ps_table_rows", table), 77);
  EXPECT_EQ(PromValue(page, "deepfm_ps_table_bytes", table), 7700);
  EXPECT_EQ(PromValue(page, "deepfm_ps_table_admitted_total", table), 70);
  EXPECT_EQ(PromValue(page, "deepfm_ps_table_filtered_reads_total", table), 8);
  EXPECT_EQ(PromValue(page, "deepfm_ps_table_filtered_grads_total", table), 9);
  auto evicted = [&](const char* reason) {
    auto l = table;
    l["reason"] = reason;
    return PromValue(page, "deepfm_ps_table_evicted_total", l);
  };
  EXPECT_EQ(evicted("ttl"), 1);
  EXPECT_EQ(evicted("l2"), 2);
  EXPECT_EQ(evicted("budget"), 3);
  EXPECT_EQ(PromValue(page, "deepfm_ps_table_pending_shed_total", table), 4);
  // One TYPE line per family, even with several tables.
  ps::TableStats* t2 = s.add_tables();
  t2->set_name("emb2");
  t2->set_rows(5);
  const std::string two = Page(s);
  size_t types = 0;
  for (size_t at = 0; (at = two.find("# TYPE deepfm_ps_table_rows ", at)) != std::string::npos; ++at)
    ++types;
  EXPECT_EQ(types, 1u);
  EXPECT_EQ(PromValue(two, "deepfm_ps_table_rows", {{"task", "ps:1"}, {"table", "emb2"}}), 5);
}

TEST(ShardStatsMetricsTest, TheCollectorReadsStatsAtEveryScrape) {
  int reads = 0;
  ShardStatsCollector c("ps:0", [&](ps::StatsResponse* r) { r->set_global_step(++reads); });
  auto page = prometheus::TextSerializer().Serialize(c.Collect());
  EXPECT_EQ(PromValue(page, "deepfm_ps_global_step", {{"task", "ps:0"}}), 1);
  page = prometheus::TextSerializer().Serialize(c.Collect());
  EXPECT_EQ(PromValue(page, "deepfm_ps_global_step", {{"task", "ps:0"}}), 2);
}

}  // namespace
}  // namespace deepfm::obs

// --ps_memory_budget_mb holds for the whole shard process, not only for its
// tables: a real `deepfm ps` fed a long tail of new keys by real pushes
// stays within the budget plus a fixed overhead (the idle process, the
// dense variables with their slots, one step's requests), its RSS sampled
// from /proc while it runs. Stats reports the process's RSS beside the
// budget.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/shard_memory_probe.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;
using testing_util::ShardMemoryFigures;
using testing_util::ShardMemoryProbe;

constexpr double kMiB = 1024.0 * 1024.0;
// What the README promises above the budget.
constexpr uint64_t kOverheadBytes = 48ull << 20;

TEST(ShardMemoryTest, PeakRssStaysWithinTheBudgetPlusAFixedOverhead) {
  ShardMemoryProbe p;
  p.deepfm_bin = DEEPFM_BIN;
  p.folder = (fs::temp_directory_path() / ("shard_memory_" + std::to_string(getpid()))).string();
  p.budget_mb = 64;
  p.keys = 1000000;  // about three budgets' worth of rows
  ShardMemoryFigures f;
  const Status s = testing_util::ProbeShardMemory(p, &f);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const uint64_t budget = static_cast<uint64_t>(p.budget_mb) << 20;
  printf(
      "budget %lld MiB: idle %.1f MiB, peak %.1f MiB (sampled %.1f), tables %.1f MiB, "
      "%llu rows, %llu evicted, %.2f s\n",
      static_cast<long long>(p.budget_mb), f.idle_rss / kMiB, f.peak_rss / kMiB,
      f.sampled_peak / kMiB, f.tables_bytes / kMiB, static_cast<unsigned long long>(f.rows),
      static_cast<unsigned long long>(f.evicted), f.seconds);
  EXPECT_GT(f.evicted, 0u) << "the budget did not bind: the test measures nothing";
  EXPECT_LE(f.tables_bytes, budget);
  EXPECT_LE(f.peak_rss, budget + kOverheadBytes)
      << "peak RSS " << f.peak_rss / kMiB << " MiB over the budget's " << p.budget_mb << " MiB";
  EXPECT_LE(f.sampled_peak, budget + kOverheadBytes);
  // Stats says the same as /proc, beside the budget.
  EXPECT_EQ(f.stats_budget, budget);
  EXPECT_GT(f.stats_rss, f.idle_rss / 2);
  EXPECT_GE(f.stats_peak_rss, f.peak_rss * 9 / 10);
  EXPECT_LE(f.stats_peak_rss, f.peak_rss * 11 / 10 + (4 << 20));
  fs::remove_all(p.folder);
}

}  // namespace
}  // namespace deepfm

// The shard process's resident memory under --ps_memory_budget_mb: a real
// `deepfm ps` fed --keys new keys by real pushes (tests/support/
// shard_memory_probe.h), one run per budget. Prints a table: idle RSS, peak
// RSS (sampled and VmHWM), what the tables hold, and the overhead above the
// budget. Prints figures; not a test.
#include <gflags/gflags.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "tests/support/shard_memory_probe.h"

DEFINE_string(deepfm, "build/launcher/deepfm", "the deepfm program");
DEFINE_string(budgets_mb, "64,256,1024", "budgets to run, MiB");
DEFINE_int64(keys_per_mb, 15000, "new keys pushed per MiB of budget (about 3x what fits)");
DEFINE_int64(min_keys, 1000000, "at least this many keys per run");
DEFINE_string(extra_flags, "", "more flags for the shard");
DEFINE_string(out, "/tmp/deepfm_shard_rss", "job folders");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  using deepfm::testing_util::ShardMemoryFigures;
  using deepfm::testing_util::ShardMemoryProbe;
  std::printf(
      "| budget MiB | keys | idle RSS MiB | peak RSS MiB (VmHWM) | sampled peak MiB | "
      "tables MiB | rows | evicted | overhead MiB | final RSS MiB | push s "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::stringstream list(FLAGS_budgets_mb);
  std::string item;
  const double mib = 1024.0 * 1024.0;
  while (std::getline(list, item, ',')) {
    ShardMemoryProbe p;
    p.deepfm_bin = FLAGS_deepfm;
    p.budget_mb = std::stoll(item);
    p.keys = std::max<int64_t>(FLAGS_min_keys, p.budget_mb * FLAGS_keys_per_mb);
    p.folder = FLAGS_out + "/budget" + item;
    p.extra_flags = FLAGS_extra_flags;
    std::filesystem::remove_all(p.folder);
    ShardMemoryFigures f;
    const deepfm::Status s = deepfm::testing_util::ProbeShardMemory(p, &f);
    if (!s.ok()) {
      std::fprintf(stderr, "budget %s: %s\n", item.c_str(), s.ToString().c_str());
      return 1;
    }
    std::printf("| %lld | %lld | %.1f | %.1f | %.1f | %.1f | %llu | %llu | %.1f | %.1f | %.1f |\n",
                static_cast<long long>(p.budget_mb), static_cast<long long>(p.keys),
                f.idle_rss / mib, f.peak_rss / mib, f.sampled_peak / mib, f.tables_bytes / mib,
                static_cast<unsigned long long>(f.rows), static_cast<unsigned long long>(f.evicted),
                f.peak_rss / mib - p.budget_mb, f.final_rss / mib, f.seconds);
    std::fflush(stdout);
  }
  return 0;
}

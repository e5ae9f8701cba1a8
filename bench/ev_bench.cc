// Embedding admission, eviction and the memory budget under a long stream:
// --keys Zipf(--zipf_s) key draws over --universe values, pushed in batches
// of unique keys through one in-process shard (Adam, D=16: rows of 17
// floats), with one policy. Prints one JSON line: peak resident memory, the
// tables' bytes and rows at the end, push throughput, and the hit rate (the
// fraction of pushed keys that found their row, not a new one). One policy
// per process, so each peak RSS is its own; bench/ev_bench.sh runs them all.
// Prints figures; not a test.
#include <gflags/gflags.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/bytes.h"
#include "common/hash.h"
#include "common/random.h"
#include "common/timing.h"
#include "ps/shard.h"

DEFINE_int64(keys, 50000000, "key draws streamed through the shard");
DEFINE_int64(universe, 1000000000, "distinct values the Zipf draws come from");
DEFINE_double(zipf_s, 1.1, "Zipf exponent");
DEFINE_int32(batch, 8192, "key draws per push (duplicates within a push are merged)");
DEFINE_string(policy, "none",
              "none, counter2, bloom2 (filter_freq 2), ttl (steps_to_live --ttl_steps), l2, "
              "budget (recent, then frequent) or budget_lru (plain LRU)");
DEFINE_int64(budget_mb, 2048, "budget for the budget policies, MiB");
DEFINE_int64(ttl_steps, 1000, "steps_to_live of the ttl policy");
DEFINE_double(l2, 1e-3, "l2_threshold of the l2 policy");
DEFINE_int64(bloom_max_elements, 8000000, "bloom2: expected distinct keys");

namespace deepfm::ps {
namespace {

// Continuous inverse-CDF sampling of a power law truncated to [1, n],
// rounded down: Zipf-like ranks without a table of n weights.
class ZipfDraw {
 public:
  ZipfDraw(double s, double n) : s_(s), a_(std::pow(n, 1 - s) - 1) {}
  uint64_t operator()(SplitMix64& rng) const {
    const double u = (rng.Next() >> 11) * 0x1.0p-53;
    return static_cast<uint64_t>(std::pow(a_ * u + 1, 1 / (1 - s_)));
  }

 private:
  double s_, a_;
};

int Run() {
  ShardOptions so;
  so.optimizer.type = OptimizerType::kAdam;
  const std::string& p = FLAGS_policy;
  if (p == "counter2" || p == "bloom2") {
    so.ev.filter_freq = 2;
    so.ev.filter = p == "counter2" ? FilterKind::kCounter : FilterKind::kBloom;
    so.ev.bloom_max_elements = static_cast<uint64_t>(FLAGS_bloom_max_elements);
  } else if (p == "ttl") {
    so.ev.steps_to_live = FLAGS_ttl_steps;
    so.ev.evict_interval_steps = std::max<int64_t>(1, FLAGS_ttl_steps / 4);
  } else if (p == "l2") {
    so.ev.l2_threshold = static_cast<float>(FLAGS_l2);
    so.ev.evict_interval_steps = 200;
  } else if (p == "budget" || p == "budget_lru") {
    so.memory_budget_bytes = FLAGS_budget_mb << 20;
    so.ev.budget_order = p == "budget" ? BudgetOrder::kRecentThenFrequent : BudgetOrder::kRecent;
  } else if (p != "none") {
    fprintf(stderr, "ev_bench: unknown --policy=%s\n", p.c_str());
    return 2;
  }
  Status s;
  auto shard = Shard::Create(so, &s);
  if (!shard) {
    fprintf(stderr, "ev_bench: %s\n", s.ToString().c_str());
    return 2;
  }
  RegisterTableRequest reg;
  reg.mutable_spec()->set_name("emb");
  reg.mutable_spec()->set_dim(17);
  reg.mutable_spec()->set_init_stddev(0.01f);
  RegisterTableResponse rr;
  if (!shard->RegisterTable(reg, &rr).ok()) return 2;

  ZipfDraw draw(FLAGS_zipf_s, static_cast<double>(FLAGS_universe));
  SplitMix64 rng(2026);
  std::vector<uint64_t> keys;
  std::vector<float> grads;
  PushRequest req;
  auto* sg = req.add_sparse();
  sg->set_table_id(rr.table_id());
  req.set_increment_global_step(1);
  uint64_t pushed = 0;
  double push_seconds = 0, longest_push_ms = 0;
  std::vector<double> push_ms;  // every push's, for the percentiles
  int64_t step = 0;
  for (int64_t drawn = 0; drawn < FLAGS_keys; drawn += FLAGS_batch) {
    keys.clear();
    const int64_t n = std::min<int64_t>(FLAGS_batch, FLAGS_keys - drawn);
    for (int64_t i = 0; i < n; ++i) keys.push_back(Mix64(draw(rng)));
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    grads.resize(keys.size() * 17);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 1e-3f * static_cast<float>(static_cast<int>(i % 7) - 3);
    AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
    AssignBytes(grads.data(), grads.size(), sg->mutable_grads());
    req.set_global_step(++step);
    PushResponse resp;
    const int64_t t0 = NowNanos();
    s = shard->Push(req, &resp);
    const double dt = (NowNanos() - t0) * 1e-9;
    if (!s.ok()) {
      fprintf(stderr, "ev_bench: push failed: %s\n", s.ToString().c_str());
      return 1;
    }
    push_seconds += dt;
    longest_push_ms = std::max(longest_push_ms, dt * 1e3);
    push_ms.push_back(dt * 1e3);
    pushed += keys.size();
  }
  auto percentile = [&](double q) {
    if (push_ms.empty()) return 0.0;
    std::vector<double> v = push_ms;
    const size_t at = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
    std::nth_element(v.begin(), v.begin() + at, v.end());
    return v[at];
  };
  StatsResponse st;
  shard->Stats(&st);
  const TableStats& ts = st.tables(0);
  const EvCounters c = shard->table(rr.table_id())->counters();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json out = {
      {"policy", p},
      {"draws", FLAGS_keys},
      {"pushed_keys", pushed},
      {"steps", step},
      {"rows", ts.rows()},
      {"table_mb", ts.bytes() / 1048576.0},
      {"peak_rss_mb", ru.ru_maxrss / 1024.0},
      {"budget_mb", so.memory_budget_bytes >> 20},
      {"budget_peak_mb", st.memory_peak_bytes() / 1048576.0},
      {"push_keys_per_sec", pushed / push_seconds},
      {"longest_push_ms", longest_push_ms},
      {"p50_push_ms", percentile(0.5)},
      {"p99_push_ms", percentile(0.99)},
      {"p999_push_ms", percentile(0.999)},
      {"sweeps", st.sweeps()},
      {"longest_sweep_hold_ms", st.longest_sweep_hold_ms()},
      {"hit_rate", pushed > 0 ? 1.0 - static_cast<double>(c.created) / pushed : 0.0},
      {"created", c.created},
      {"admitted", ts.admitted()},
      {"filtered_grads", ts.filtered_grads()},
      {"evicted_ttl", ts.evicted_ttl()},
      {"evicted_l2", ts.evicted_l2()},
      {"evicted_budget", ts.evicted_budget()},
      {"filter_mb", ts.filter_bytes() / 1048576.0}};
  printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace deepfm::ps

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return deepfm::ps::Run();
}

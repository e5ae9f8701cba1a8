// Admission, eviction and the memory budget of an embedding table, against
// worked examples (ps/ev_policy.h).
#include "ps/ev_policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "common/hash.h"
#include "common/random.h"
#include "common/bytes.h"
#include "ps/embedding_table.h"
#include "ps/shard.h"
#include "tests/support/ps_fixtures.h"

namespace deepfm::ps {
namespace {

std::unique_ptr<Optimizer> Sgd() { return testing_util::SgdOptimizer(1.0f); }

TableOptions Opts(const EvPolicy& ev, int stripes = 4) {
  TableOptions t;
  t.name = "emb";
  t.dim = 2;
  t.init_stddev = 0.5f;
  t.seed = 3;
  t.num_stripes = stripes;
  t.ev = ev;
  return t;
}

std::vector<float> Init(uint64_t key) {
  std::vector<float> v(2);
  InitRowNormal(key, 3, 0.5f, v.data(), 2);
  return v;
}

std::vector<float> PullOne(EmbeddingTable& t, uint64_t key, int64_t step) {
  std::vector<float> v(2);
  t.Pull(&key, 1, v.data(), true, step);
  return v;
}

void PushOne(EmbeddingTable& t, uint64_t key, float g, int64_t step) {
  const float grads[2] = {g, g};
  t.Push(&key, 1, grads, step);
}

TEST(EvPolicyTest, BloomSizingFollowsDeepRecsFormulas) {
  // k = ceil(|log2 p|), m = ceil(|ln p| n / (ln 2)^2), worked by hand.
  BloomSize b = BloomSizing(0.01, 1000);
  EXPECT_EQ(b.hashes, 7u);       // |log2 0.01| = 6.64
  EXPECT_EQ(b.counters, 9586u);  // 4.60517 * 1000 / 0.480453 = 9585.06
  b = BloomSizing(0.001, 1000000);
  EXPECT_EQ(b.hashes, 10u);          // 9.97
  EXPECT_EQ(b.counters, 14377588u);  // 6.907755e6 / 0.480453 = 14377587.2
  b = BloomSizing(0.05, 12345);
  EXPECT_EQ(b.hashes, 5u);
  EXPECT_EQ(b.counters, 76974u);
}

TEST(EvPolicyTest, BadPoliciesAreRefusedByFlagName) {
  EvPolicy p;
  p.filter = FilterKind::kBloom;
  p.filter_freq = 2;
  p.bloom_fp_rate = 1.5;
  Status s = ValidateEvPolicy(p);
  EXPECT_NE(s.message().find("--ev_bloom_fp_rate"), std::string::npos) << s.ToString();
  p.bloom_fp_rate = 0.01;
  p.steps_to_live = -1;
  EXPECT_NE(ValidateEvPolicy(p).message().find("--ev_steps_to_live"), std::string::npos);
  p.steps_to_live = 0;
  p.l2_threshold = NAN;
  EXPECT_NE(ValidateEvPolicy(p).message().find("--ev_l2_threshold"), std::string::npos);
  p.l2_threshold = 0;
  EXPECT_TRUE(ValidateEvPolicy(p).ok());
  bool ok = true;
  ParseFilterKind("cbf", &ok);
  EXPECT_FALSE(ok);
}

class AdmissionTest : public ::testing::TestWithParam<FilterKind> {};

// filter_freq 3: the first two pushes of a key drop their gradient and make
// no row; pulls read the initial value; the third push creates the row from
// that same initial value and applies its gradient.
TEST_P(AdmissionTest, AKeyIsAdmittedAtExactlyItsNthPush) {
  auto opt = Sgd();
  EvPolicy ev;
  ev.filter_freq = 3;
  ev.filter = GetParam();
  ev.bloom_max_elements = 1000;
  EmbeddingTable t(Opts(ev), opt.get());
  const uint64_t key = Mix64(77), other = Mix64(78);
  const std::vector<float> init = Init(key);
  for (int push = 1; push <= 2; ++push) {
    PushOne(t, key, 0.25f, push);
    EXPECT_EQ(t.size(), 0u) << "push " << push;
    EXPECT_EQ(PullOne(t, key, push), init) << "push " << push;
  }
  PushOne(t, other, 1.0f, 2);
  PushOne(t, key, 0.25f, 3);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(PullOne(t, key, 3), (std::vector<float>{init[0] - 0.25f, init[1] - 0.25f}));
  const EvCounters c = t.counters();
  EXPECT_EQ(c.admitted, 1u);
  EXPECT_EQ(c.filtered_grads, 3u);  // key twice, other once
  EXPECT_EQ(c.filtered_reads, 2u);  // the two pulls before admission
  t.ForEachRow([&](uint64_t k, const float*, const float*, RowMeta m) {
    EXPECT_EQ(k, key);
    EXPECT_EQ(m.frequency, 1u);  // pushes applied to the row
    EXPECT_EQ(m.last_step, 3u);
  });
  // A read-only (evaluation) pull is not a filtered training read.
  std::vector<float> v(2);
  t.Pull(&other, 1, v.data(), /*create_missing=*/false, 3);
  EXPECT_EQ(v, Init(other));
  EXPECT_EQ(t.counters().filtered_reads, 2u);
}

// A snapshot keeps the admission state of its cut: sightings after the cut
// change the live filter only (each stripe's filter is copied on its first
// change, so the cut itself copies nothing).
TEST_P(AdmissionTest, ASnapshotKeepsTheFilterAsItWasAtTheCut) {
  auto opt = Sgd();
  EvPolicy ev;
  ev.filter_freq = 5;
  ev.filter = GetParam();
  ev.bloom_max_elements = 1000;
  EmbeddingTable t(Opts(ev), opt.get());
  const uint64_t a = Mix64(1), b = Mix64(2);
  PushOne(t, a, 0.1f, 1);
  const std::vector<uint16_t> bloom_at_cut = t.BloomCounters();
  t.BeginSnapshot(1);
  PushOne(t, a, 0.1f, 2);
  PushOne(t, b, 0.1f, 2);
  std::map<uint64_t, uint32_t> snap, live;
  t.ForEachSnapshotPendingKey([&](uint64_t k, uint32_t c) { snap[k] = c; });
  t.ForEachPendingKey([&](uint64_t k, uint32_t c) { live[k] = c; });
  if (GetParam() == FilterKind::kCounter) {
    EXPECT_EQ(snap, (std::map<uint64_t, uint32_t>{{a, 1}}));
    EXPECT_EQ(live, (std::map<uint64_t, uint32_t>{{a, 2}, {b, 1}}));
  } else {
    EXPECT_EQ(t.SnapshotBloomCounters(), bloom_at_cut);
    EXPECT_NE(t.BloomCounters(), bloom_at_cut);
  }
  t.EndSnapshot();
  snap.clear();
  t.ForEachSnapshotPendingKey([&](uint64_t k, uint32_t c) { snap[k] = c; });
  EXPECT_TRUE(snap.empty());
}

INSTANTIATE_TEST_SUITE_P(Filters, AdmissionTest,
                         ::testing::Values(FilterKind::kCounter, FilterKind::kBloom),
                         [](const auto& info) { return std::string(FilterKindName(info.param)); });

// steps_to_live 10: a row pushed at step 5 lives through step 15 and is
// dead from step 16 on, whether or not a sweep has freed it yet.
TEST(EvictionTest, StepsToLiveEndsARowAfterExactlyThatManySteps) {
  auto opt = Sgd();
  EvPolicy ev;
  ev.steps_to_live = 10;
  EmbeddingTable t(Opts(ev), opt.get());
  const uint64_t key = Mix64(5), fresh = Mix64(6);
  PushOne(t, key, 1.0f, 5);
  PushOne(t, fresh, 1.0f, 12);
  const std::vector<float> trained = PullOne(t, key, 5);
  ASSERT_NE(trained, Init(key));
  EXPECT_EQ(PullOne(t, key, 15), trained);
  EXPECT_EQ(PullOne(t, key, 16), Init(key));  // dead before any sweep
  SweepRule rule;
  rule.ttl = true;
  EXPECT_EQ(t.Sweep(15, rule), 0u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Sweep(16, rule), 1u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.counters().evicted_ttl, 1u);
  // Pushed again, it starts over from its initial value.
  PushOne(t, key, 0.5f, 17);
  EXPECT_EQ(PullOne(t, key, 17), (std::vector<float>{Init(key)[0] - 0.5f, Init(key)[1] - 0.5f}));
  // A push to a dead row not yet swept also starts it over.
  PushOne(t, fresh, 0.5f, 30);
  EXPECT_EQ(PullOne(t, fresh, 30),
            (std::vector<float>{Init(fresh)[0] - 0.5f, Init(fresh)[1] - 0.5f}));
  EXPECT_EQ(t.counters().evicted_ttl, 2u);
}

// l2_threshold 1: a row with half squared norm exactly 1 stays, one just
// below goes.
TEST(EvictionTest, L2EvictionDropsRowsStrictlyBelowTheThreshold) {
  auto opt = Sgd();
  EvPolicy ev;
  ev.l2_threshold = 1.0f;
  EmbeddingTable t(Opts(ev), opt.get());
  const float at[2] = {1.0f, 1.0f};       // 0.5 * (1 + 1) = 1
  const float below[2] = {1.0f, 0.999f};  // 0.999
  const float slots[1] = {0};
  t.Upsert(Mix64(1), at, slots, RowMeta{1, 1});
  t.Upsert(Mix64(2), below, slots, RowMeta{1, 1});
  SweepRule rule;
  rule.l2 = true;
  EXPECT_EQ(t.Sweep(2, rule), 1u);
  EXPECT_EQ(t.size(), 1u);
  t.ForEachRow([](uint64_t k, const float*, const float*, RowMeta) { EXPECT_EQ(k, Mix64(1)); });
  EXPECT_EQ(t.counters().evicted_l2, 1u);
}

// One stripe, a full budget: the push that needs room frees the least
// valuable sixteenth of the stripe: least recently pushed first, then (for
// rows pushed at the same step) least frequently.
TEST(BudgetTest, TheLeastRecentlyThenLeastFrequentlyPushedRowsGoFirst) {
  auto opt = Sgd();
  EvPolicy ev;
  const int rows = 112;  // exactly fills the arena's first three chunks (16 + 32 + 64)
  // Measure the bytes of `rows` rows, then budget exactly that.
  int64_t full = 0;
  {
    MemoryBudget probe(int64_t{1} << 40);
    TableOptions o = Opts(ev, 1);
    o.budget = &probe;
    EmbeddingTable t(o, opt.get());
    for (int i = 0; i < rows; ++i) PushOne(t, Mix64(i), 0.1f, 1);
    full = probe.used();
  }
  MemoryBudget budget(full);
  TableOptions o = Opts(ev, 1);
  o.budget = &budget;
  EmbeddingTable t(o, opt.get());
  // Rows 0..6 were last pushed at step 2 (7 rows); 7..111 at step 3, and
  // among those rows 7..13 once, the rest twice.
  for (int i = 0; i < rows; ++i) PushOne(t, Mix64(i), 0.1f, i < 7 ? 2 : 3);
  for (int i = 14; i < rows; ++i) PushOne(t, Mix64(i), 0.1f, 3);
  ASSERT_EQ(budget.used(), full);
  PushOne(t, Mix64(1000), 0.1f, 4);  // no room: 112 / 16 = 7 rows go
  EXPECT_EQ(t.counters().evicted_budget, 7u);
  EXPECT_EQ(t.size(), static_cast<size_t>(rows - 7 + 1));
  std::set<uint64_t> left;
  t.ForEachRow([&](uint64_t k, const float*, const float*, RowMeta) { left.insert(k); });
  for (int i = 0; i < 7; ++i) EXPECT_EQ(left.count(Mix64(i)), 0u) << "row " << i;
  // The next six free positions take six more rows without evicting.
  for (int i = 0; i < 6; ++i) PushOne(t, Mix64(2000 + i), 0.1f, 5);
  EXPECT_EQ(t.counters().evicted_budget, 7u);
  // Then rows 7..13 (step 3, pushed once) go before the rows pushed twice.
  PushOne(t, Mix64(3000), 0.1f, 6);
  t.ForEachRow([&](uint64_t k, const float*, const float*, RowMeta) { left.insert(k); });
  left.clear();
  t.ForEachRow([&](uint64_t k, const float*, const float*, RowMeta) { left.insert(k); });
  for (int i = 7; i < 14; ++i) EXPECT_EQ(left.count(Mix64(i)), 0u) << "row " << i;
  for (int i = 14; i < rows; ++i) EXPECT_EQ(left.count(Mix64(i)), 1u) << "row " << i;
  EXPECT_LE(budget.peak(), full);
}

// A Zipf(1.1) stream of 300k pushes over 200k distinct keys through a budget
// of a fifth of the unbounded table: the table never passes the budget, no
// push is lost, and the hottest keys keep their rows.
TEST(BudgetTest, TheBudgetHoldsUnderASkewedStream) {
  auto opt = Sgd();
  EvPolicy ev;
  const uint64_t kKeys = 200000;
  std::vector<double> cdf(kKeys);
  double sum = 0;
  for (uint64_t i = 0; i < kKeys; ++i) cdf[i] = (sum += std::pow(static_cast<double>(i + 1), -1.1));
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, sum);
  auto stream = [&](EmbeddingTable& t, int steps) {
    std::vector<uint64_t> batch;
    std::vector<float> grads;
    for (int step = 1; step <= steps; ++step) {
      std::set<uint64_t> keys;
      while (keys.size() < 1000) {
        keys.insert(Mix64(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin()));
      }
      batch.assign(keys.begin(), keys.end());
      grads.assign(batch.size() * 2, 0.01f);
      t.Push(batch.data(), batch.size(), grads.data(), step);
    }
  };
  MemoryBudget unbounded(int64_t{1} << 40);
  {
    TableOptions o = Opts(ev, 64);
    o.budget = &unbounded;
    EmbeddingTable t(o, opt.get());
    stream(t, 300);
  }
  rng.seed(7);
  MemoryBudget budget(unbounded.peak() / 5);
  TableOptions o = Opts(ev, 64);
  o.budget = &budget;
  EmbeddingTable t(o, opt.get());
  stream(t, 300);
  EXPECT_LE(budget.peak(), budget.limit());
  EXPECT_GT(t.counters().evicted_budget, 0u);
  EXPECT_GT(t.size(), 0u);
  // The 20 hottest keys are pushed nearly every step: they are never the
  // least recently pushed.
  for (uint64_t i = 0; i < 20; ++i) {
    const uint64_t key = Mix64(i);
    std::vector<float> v(2);
    t.Pull(&key, 1, v.data(), true, 300);
    EXPECT_NE(v, Init(key)) << "hot key " << i << " lost its row";
  }
}

// A row evicted while a snapshot is open is still in the snapshot (as it was
// at the cut), and a new row that reuses its place is not.
TEST(EvictionTest, ASnapshotKeepsRowsEvictedAfterItsCut) {
  auto opt = Sgd();
  EvPolicy ev;
  EmbeddingTable t(Opts(ev, 1), opt.get());
  const float big[2] = {2, 2};
  const float slots[1] = {0};
  t.Upsert(Mix64(1), big, slots, RowMeta{1, 5});
  t.Upsert(Mix64(2), big, slots, RowMeta{1, 1});
  const uint64_t gen = t.BeginSnapshot(5);
  // After the cut the budget's rule drops row 2 (the least recently pushed)
  // and a new key takes its place in the arena.
  SweepRule rule;
  rule.below_value = EmbeddingTable::BudgetValue(RowMeta{0, 2}, BudgetOrder::kRecentThenFrequent);
  EXPECT_EQ(t.Sweep(6, rule), 1u);
  const uint64_t k3 = Mix64(3);
  const float g[2] = {-5, -5};
  t.Push(&k3, 1, g, 6);
  RecordBuffer out;
  ASSERT_GE(t.CopySnapshotStripe(gen, 0, &out), 0);
  std::map<uint64_t, std::vector<float>> got;
  for (size_t at = 0; at < out.size(); at += t.record_bytes()) {
    uint64_t key;
    std::memcpy(&key, out.data() + at, 8);
    std::vector<float> v(2);
    std::memcpy(v.data(), out.data() + at + 16, 8);
    EXPECT_TRUE(got.emplace(key, v).second) << "key copied twice";
  }
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(got[Mix64(2)], (std::vector<float>{2, 2}));
  EXPECT_EQ(got.count(Mix64(3)), 0u);
}

std::unique_ptr<Shard> CounterShard(int64_t budget_bytes, int stripes) {
  ShardOptions o;
  o.optimizer.type = OptimizerType::kSgd;
  o.optimizer.learning_rate = 0.1f;
  o.ev.filter = FilterKind::kCounter;
  o.ev.filter_freq = 2;
  o.memory_budget_bytes = budget_bytes;
  o.table_stripes = stripes;
  o.background_sweeps = false;
  Status s;
  auto shard = Shard::Create(o, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  testing_util::AddTable(*shard, "emb", 8);
  return shard;
}

void PushKeys(Shard& shard, int step, const std::vector<uint64_t>& keys) {
  testing_util::PushKeys(shard, step, keys, std::vector<float>(keys.size() * 8, 0.01f));
}

// A counter filter under a tight budget: a long tail of keys pushed once
// each (never admitted) fills the filter. A stripe whose counts would double
// past the budget forgets them first (no sweeps run here), so the hot rows
// every push touches survive and the shard stays within its budget; before,
// the counts stayed and the rows were evicted.
TEST(EvictionTest, TheCounterFiltersCountsAreShedUnderTheBudgetBeforeRows) {
  const int64_t budget = 4 << 20;
  auto shard = CounterShard(budget, 16);
  std::vector<uint64_t> hot;
  for (uint64_t k = 0; k < 64; ++k) hot.push_back(Mix64(k + 1));
  uint64_t tail = 1000000;
  for (int step = 1; step <= 1000; ++step) {
    std::vector<uint64_t> keys = hot;
    for (int j = 0; j < 500; ++j) keys.push_back(Mix64(tail++));
    PushKeys(*shard, step, keys);
  }
  // Within the budget, give or take one stripe's index doubling (as rows).
  EXPECT_LE(shard->budget()->peak(), budget + budget / 8);
  EXPECT_LE(shard->budget()->used(), budget);
  EmbeddingTable* t = shard->table(0);
  EXPECT_GT(t->counters().pending_shed, 250000u);
  EXPECT_EQ(t->counters().evicted_budget, 0u) << "rows were evicted while counts stayed";
  EXPECT_EQ(t->size(), hot.size());
}

// A shard whose budget is nearly all counts: 8 hot rows (pushed twice, so
// admitted), then 20,000 keys pushed once each.
std::unique_ptr<Shard> FullOfCounts(const std::vector<uint64_t>& hot,
                                    const std::vector<uint64_t>& tail) {
  int64_t full = 0;
  {
    auto probe = CounterShard(int64_t{1} << 40, 1);
    PushKeys(*probe, 1, hot);
    PushKeys(*probe, 2, hot);
    PushKeys(*probe, 3, tail);
    full = probe->budget()->used();
  }
  auto shard = CounterShard(full + full / 100, 1);  // under 2 % to spare
  PushKeys(*shard, 1, hot);
  PushKeys(*shard, 2, hot);
  PushKeys(*shard, 3, tail);
  return shard;
}

std::vector<uint64_t> Keys(uint64_t from, uint64_t n) {
  std::vector<uint64_t> k;
  for (uint64_t i = 0; i < n; ++i) k.push_back(Mix64(from + i));
  return k;
}

// The sweeper's part: the first sweep marks the counts, the second forgets
// those not pushed in between, instead of evicting rows.
TEST(EvictionTest, ASweepUnderTheBudgetForgetsCountsNotPushedSinceTheLastSweep) {
  const std::vector<uint64_t> hot = Keys(1, 8), tail = Keys(100, 20000);
  auto shard = FullOfCounts(hot, tail);
  const int64_t before = shard->budget()->used();
  EmbeddingTable* t = shard->table(0);
  shard->SweepNow(false);
  EXPECT_EQ(t->counters().pending_shed, 0u) << "every count was sighted since the start";
  PushKeys(*shard, 4, hot);
  shard->SweepNow(false);
  EXPECT_EQ(t->counters().pending_shed, tail.size());
  EXPECT_EQ(t->counters().evicted_budget, 0u);
  EXPECT_EQ(t->size(), hot.size());
  EXPECT_LT(shard->budget()->used(), before / 2);
}

// A push that needs room for new rows forgets counts not sighted since the
// last shed before it evicts a row.
TEST(EvictionTest, ANewRowUnderAFullBudgetForgetsCountsBeforeRows) {
  const std::vector<uint64_t> hot = Keys(1, 8), tail = Keys(100, 20000), fresh = Keys(50000, 100);
  auto shard = FullOfCounts(hot, tail);
  shard->SweepNow(false);  // marks the counts
  PushKeys(*shard, 4, fresh);
  PushKeys(*shard, 5, fresh);  // admitted: 100 new rows
  EmbeddingTable* t = shard->table(0);
  EXPECT_EQ(t->counters().evicted_budget, 0u);
  EXPECT_EQ(t->size(), hot.size() + fresh.size());
  EXPECT_EQ(t->counters().pending_shed, tail.size());
  EXPECT_LE(shard->budget()->used(), shard->budget()->limit());
}

}  // namespace
}  // namespace deepfm::ps

// Admission and eviction state survives checkpoints (ps/ev_policy.h): after
// a restore the same keys are admitted and evicted as without it, and a
// delta records the rows evicted since its base.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <vector>

#include "common/bytes.h"
#include "common/checkpoint_manifest.h"
#include "common/crc32c.h"
#include "common/hash.h"
#include "ps/checkpoint.h"
#include "tests/support/ps_fixtures.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

struct Row {
  std::vector<float> values, slots;
  uint32_t frequency, last_step;
  bool operator==(const Row& o) const {
    return values == o.values && slots == o.slots && frequency == o.frequency &&
           last_step == o.last_step;
  }
};

struct State {
  std::map<uint64_t, Row> rows;
  std::map<uint64_t, uint32_t> pending;
  std::vector<uint16_t> bloom;
};

State Capture(Shard& sh) {
  State st;
  EmbeddingTable* t = sh.table(0);
  t->ForEachRow([&](uint64_t k, const float* v, const float* s, RowMeta m) {
    st.rows[k] = Row{{v, v + t->dim()}, {s, s + t->slot_floats()}, m.frequency, m.last_step};
  });
  t->ForEachPendingKey([&](uint64_t k, uint32_t c) { st.pending[k] = c; });
  st.bloom = t->BloomCounters();
  return st;
}

std::unique_ptr<Shard> NewShard(const EvPolicy& ev, bool track = false) {
  ShardOptions o;
  o.optimizer.type = OptimizerType::kAdagrad;
  o.optimizer.learning_rate = 0.5f;
  o.ev = ev;
  o.track_evictions = track;
  o.background_sweeps = false;
  Status s;
  auto shard = Shard::Create(o, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  testing_util::AddTable(*shard, "emb", 2, 0.5f, 9);
  return shard;
}

// One push per step: a few hot keys every step and a long tail seen once or
// twice, with gradients that shrink some rows towards zero.
void PushStep(Shard& sh, int step) {
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 4; ++k) keys.push_back(Mix64(k));
  for (uint64_t j = 0; j < 12; ++j) keys.push_back(Mix64(100 + (step * 7 + j * j) % 90));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<float> g(keys.size() * 2);
  for (size_t i = 0; i < g.size(); ++i)
    g[i] = (i % 3 == 0 ? 0.8f : -0.3f) * ((step + i) % 2 ? 1 : -1);
  testing_util::PushKeys(sh, step, keys, g);
}

EvPolicy PolicyNamed(const std::string& p) {
  EvPolicy ev;
  if (p == "counter" || p == "bloom") {
    ev.filter_freq = 3;
    ev.filter = p == "counter" ? FilterKind::kCounter : FilterKind::kBloom;
    ev.bloom_max_elements = 500;
  } else if (p == "ttl") {
    ev.steps_to_live = 6;
  } else if (p == "l2") {
    ev.l2_threshold = 0.15f;
  }
  return ev;
}

class CheckpointFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ckpt_ev_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Saves the shard at its step (a delta on `since` when > 0) and commits it.
  std::string Save(Shard& sh, int64_t since = 0) {
    return testing_util::SaveAndCommit(sh, root_, since, "adagrad").folder;
  }

  std::unique_ptr<Shard> Restore(const std::string& folder, const EvPolicy& ev,
                                 bool track = false) {
    auto sh = NewShard(ev, track);
    uint64_t rows = 0;
    Status s = RestoreShard(&sh, folder, &rows);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return sh;
  }

  fs::path root_;
};

class CheckpointEvTest : public CheckpointFolder,
                         public ::testing::WithParamInterface<const char*> {
 protected:
  EvPolicy Policy() const { return PolicyNamed(GetParam()); }
};

// Train 12 steps, sweep, save; restore; then train the original and the
// restored shard 18 more steps the same way, sweeping both at step 20 and
// at the end. Every row (values, slots, frequency, last step) and the
// admission state must agree.
TEST_P(CheckpointEvTest, ARestoredShardAdmitsAndEvictsAsTheOriginal) {
  auto a = NewShard(Policy());
  for (int step = 1; step <= 12; ++step) PushStep(*a, step);
  a->SweepNow(true);
  const State at_save = Capture(*a);
  auto b = Restore(Save(*a), Policy());
  a->SweepNow(true);  // the save's own sweep (the sweeper thread is off)
  const State restored = Capture(*b);
  EXPECT_EQ(restored.rows.size(), at_save.rows.size());
  EXPECT_TRUE(restored.rows == at_save.rows);
  EXPECT_EQ(restored.pending, at_save.pending);
  EXPECT_EQ(restored.bloom, at_save.bloom);
  for (int step = 13; step <= 30; ++step) {
    PushStep(*a, step);
    PushStep(*b, step);
    if (step == 20) {
      a->SweepNow(true);
      b->SweepNow(true);
    }
  }
  a->SweepNow(true);
  b->SweepNow(true);
  const State want = Capture(*a), got = Capture(*b);
  EXPECT_EQ(got.rows.size(), want.rows.size());
  EXPECT_TRUE(got.rows == want.rows);
  EXPECT_EQ(got.pending, want.pending);
  EXPECT_EQ(got.bloom, want.bloom);
  // The policy did something to check.
  StatsResponse stats;
  a->Stats(&stats);
  const TableStats& ts = stats.tables(0);
  const std::string p = GetParam();
  if (p == "counter" || p == "bloom") {
    EXPECT_GT(ts.filtered_grads(), 0u);
    EXPECT_GT(ts.admitted(), 0u);
    EXPECT_FALSE(want.pending.empty() && want.bloom.empty());
  } else if (p == "ttl") {
    EXPECT_GT(ts.evicted_ttl(), 0u);
  } else {
    EXPECT_GT(ts.evicted_l2(), 0u);
  }
}

// A full save, evictions, then a delta: the restored chain holds exactly
// the rows the shard holds, not the evicted rows of the full save.
TEST_F(CheckpointFolder, ADeltaRecordsTheRowsEvictedSinceItsBase) {
  for (const char* policy : {"ttl", "l2"}) {
    SCOPED_TRACE(policy);
    fs::remove_all(root_);
    fs::create_directories(root_);
    auto a = NewShard(PolicyNamed(policy), /*track=*/true);
    for (int step = 1; step <= 8; ++step) PushStep(*a, step);
    a->SweepNow(true);
    Save(*a);  // ckpt-8, full
    for (int step = 9; step <= 16; ++step) PushStep(*a, step);
    EXPECT_GT(a->SweepNow(true), 0u);
    const std::string delta = Save(*a, 8);  // ckpt-16
    auto b = Restore(delta, PolicyNamed(policy), true);
    const State want = Capture(*a), got = Capture(*b);
    EXPECT_EQ(got.rows.size(), want.rows.size());
    EXPECT_TRUE(got.rows == want.rows);
  }
}

// A row evicted after a save's cut is in that save (it existed at the cut),
// so its eviction belongs to the next delta: a chain restored from that
// delta must not bring the row back.
TEST_F(CheckpointFolder, AnEvictionDuringASaveLandsInTheNextDelta) {
  auto a = NewShard(EvPolicy(), /*track=*/true);
  for (int step = 1; step <= 4; ++step) PushStep(*a, step);
  Save(*a);  // ckpt-4, full
  for (int step = 5; step <= 8; ++step) PushStep(*a, step);
  // Cut at step 8, then evict the rows not pushed since step 6, then write.
  std::shared_ptr<const ShardSnapshot> snap;
  ASSERT_TRUE(a->AwaitSnapshot(8, std::chrono::milliseconds(1000), true, &snap).ok());
  SweepRule rule;
  rule.below_value = EmbeddingTable::BudgetValue(RowMeta{0, 7}, BudgetOrder::kRecentThenFrequent);
  ASSERT_GT(a->table(0)->Sweep(8, rule), 0u);
  Save(*a, 4);  // ckpt-8, delta: still holds the evicted rows
  PushStep(*a, 9);
  const std::string last = Save(*a, 8);  // ckpt-9: must record those evictions
  auto b = Restore(last, EvPolicy(), true);
  const State want = Capture(*a), got = Capture(*b);
  EXPECT_EQ(got.rows.size(), want.rows.size());
  EXPECT_TRUE(got.rows == want.rows);
}

// A saved Bloom filter whose counter count is corrupt (here 2^40, 2 TiB of
// counters) is refused by name before anything is allocated for it, even
// when the manifest's checksum was made to match.
TEST_F(CheckpointFolder, ACorruptBloomFilterSizeIsRefusedBeforeItIsAllocated) {
  const EvPolicy ev = PolicyNamed("bloom");
  auto a = NewShard(ev);
  for (int step = 1; step <= 3; ++step) PushStep(*a, step);
  const std::string folder = Save(*a);
  const uint64_t counters = a->table(0)->BloomCounters().size();
  const fs::path file = fs::path(folder) / "shard-0-of-1.bin";
  std::string bytes;
  ASSERT_TRUE(ReadFile(file.string(), &bytes).ok());
  const std::string count(reinterpret_cast<const char*>(&counters), sizeof(counters));
  const size_t at = bytes.find(count);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(bytes.find(count, at + 1), std::string::npos) << "the count is not unique in the file";
  const uint64_t huge = uint64_t{1} << 40;
  bytes.replace(at, sizeof(huge), reinterpret_cast<const char*>(&huge), sizeof(huge));
  ASSERT_TRUE(WriteFileAtomic(file.string(), bytes).ok());
  Manifest m;
  std::string text;
  ASSERT_TRUE(ReadFile((fs::path(folder) / "MANIFEST").string(), &text).ok());
  ASSERT_TRUE(Manifest::Parse(text, "MANIFEST", &m).ok());
  m.files[0].crc32c = Crc32c(bytes.data(), bytes.size());
  ASSERT_TRUE(WriteFileAtomic((fs::path(folder) / "MANIFEST").string(), m.Serialize()).ok());
  auto b = NewShard(ev);
  uint64_t rows = 0;
  const Status s = RestoreShard(&b, folder, &rows);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("bad Bloom filter of table 'emb'"), std::string::npos) << s.message();
}

INSTANTIATE_TEST_SUITE_P(Policies, CheckpointEvTest,
                         ::testing::Values("counter", "bloom", "ttl", "l2"),
                         [](const auto& info) { return std::string(info.param); });

// Under a budget a restored shard keeps the saved rows and the budget.
TEST(CheckpointBudgetTest, ARestoreRespectsTheBudget) {
  const fs::path root = fs::temp_directory_path() / ("ckpt_budget_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "ckpt-30.tmp");
  EvPolicy ev;
  auto make = [&]() {
    ShardOptions o;
    o.optimizer.type = OptimizerType::kAdagrad;
    o.memory_budget_bytes = 64 << 10;
    o.table_stripes = 4;
    o.background_sweeps = false;
    Status s;
    auto sh = Shard::Create(o, &s);
    RegisterTableRequest req;
    req.mutable_spec()->set_name("emb");
    req.mutable_spec()->set_dim(2);
    RegisterTableResponse resp;
    EXPECT_TRUE(sh->RegisterTable(req, &resp).ok());
    return sh;
  };
  auto a = make();
  for (int step = 1; step <= 30; ++step) {
    std::vector<uint64_t> keys;
    for (uint64_t k = 0; k < 200; ++k) keys.push_back(Mix64(step * 1000 + k));
    PushRequest p;
    p.set_global_step(step);
    p.set_increment_global_step(1);
    auto* sg = p.add_sparse();
    AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
    std::vector<float> g(keys.size() * 2, 0.1f);
    AssignBytes(g.data(), g.size(), sg->mutable_grads());
    PushResponse r;
    ASSERT_TRUE(a->Push(p, &r).ok());
  }
  ASSERT_LE(a->budget()->peak(), a->budget()->limit());
  StatsResponse stats;
  a->Stats(&stats);
  EXPECT_GT(stats.tables(0).evicted_budget(), 0u);
  EXPECT_EQ(stats.memory_budget_bytes(), 64u << 10);
  SaveShardResult r;
  ASSERT_TRUE(SaveShard(*a, (root / "ckpt-30.tmp").string(), 30, &r).ok());
  Manifest m;
  m.global_step = 30;
  m.num_shards = 1;
  m.num_slots = kDefaultNumSlots;
  m.optimizer = "adagrad";
  m.files = {r.file};
  ASSERT_TRUE(CommitCheckpoint(root.string(), (root / "ckpt-30.tmp").string(), m, 0).ok());
  auto b = make();
  uint64_t rows = 0;
  ASSERT_TRUE(RestoreShard(&b, (root / "ckpt-30").string(), &rows).ok());
  EXPECT_EQ(rows, a->table(0)->size());
  EXPECT_LE(b->budget()->used(), b->budget()->limit());
  fs::remove_all(root);
}

}  // namespace
}  // namespace deepfm::ps

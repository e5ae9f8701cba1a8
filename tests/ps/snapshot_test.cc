// Snapshots: a table copies rows on write while a save runs, and shards cut
// at one global step while workers keep pushing (DESIGN.md §9).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/checkpoint_manifest.h"
#include "common/hash.h"
#include "ps/checkpoint.h"
#include "ps/embedding_table.h"
#include "ps/shard.h"
#include "tests/support/ps_fixtures.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Optimizer> Sgd() { return testing_util::SgdOptimizer(1.0f); }

struct Record {
  std::vector<float> values;
  RowMeta meta;
};

std::map<uint64_t, Record> CopyAll(EmbeddingTable& t, uint64_t generation) {
  std::map<uint64_t, Record> out;
  for (int i = 0; i < t.num_stripes(); ++i) {
    RecordBuffer bytes;
    const int64_t n = t.CopySnapshotStripe(generation, i, &bytes);
    EXPECT_GE(n, 0);
    const size_t record = t.record_bytes();
    EXPECT_EQ(bytes.size(), static_cast<size_t>(n) * record);
    for (size_t at = 0; at + record <= bytes.size(); at += record) {
      uint64_t key;
      Record r;
      std::memcpy(&key, bytes.data() + at, 8);
      std::memcpy(&r.meta, bytes.data() + at + 8, sizeof(RowMeta));
      r.values.resize(t.dim());
      std::memcpy(r.values.data(), bytes.data() + at + 16, sizeof(float) * t.dim());
      EXPECT_TRUE(out.emplace(key, r).second) << "key " << key << " copied twice";
    }
  }
  return out;
}

TEST(TableSnapshotTest, CopiesTheRowsAsTheyWereAtTheCut) {
  auto opt = Sgd();
  TableOptions o;
  o.name = "emb";
  o.dim = 2;
  o.num_stripes = 8;
  EmbeddingTable t(o, opt.get());
  std::vector<uint64_t> keys(200);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = Mix64(i + 1);
  std::vector<float> grads(keys.size() * 2, 0.5f);
  t.Push(keys.data(), keys.size(), grads.data(), /*step=*/3);
  std::vector<float> at_cut(keys.size() * 2);
  t.Pull(keys.data(), keys.size(), at_cut.data());

  const uint64_t gen = t.BeginSnapshot(3);
  // After the cut: half the rows change (twice), and new rows appear.
  std::vector<float> more(100 * 2, 1.0f);
  t.Push(keys.data(), 100, more.data(), 4);
  t.Push(keys.data(), 100, more.data(), 5);
  const uint64_t fresh[2] = {Mix64(9001), Mix64(9002)};
  t.Push(fresh, 2, more.data(), 5);
  const uint64_t pulled = Mix64(9003);  // created by a pull after the cut
  std::vector<float> ignored(2);
  t.Pull(&pulled, 1, ignored.data());
  const std::map<uint64_t, Record> snap = CopyAll(t, gen);
  ASSERT_EQ(snap.size(), keys.size()) << "rows created after the cut must be left out";
  for (size_t i = 0; i < keys.size(); ++i) {
    const Record& r = snap.at(keys[i]);
    EXPECT_EQ(r.values[0], at_cut[2 * i]) << "row " << i;
    EXPECT_EQ(r.values[1], at_cut[2 * i + 1]) << "row " << i;
    EXPECT_EQ(r.meta.last_step, 3u);
    EXPECT_EQ(r.meta.frequency, 1u);
  }
  // The live table moved on.
  std::vector<float> now(2);
  t.Pull(keys.data(), 1, now.data());
  EXPECT_EQ(now[0], at_cut[0] - 2.0f);
  // A newer cut supersedes a snapshot still being copied.
  const uint64_t g1 = t.BeginSnapshot(5);
  const uint64_t g2 = t.BeginSnapshot(5);
  RecordBuffer bytes;
  EXPECT_EQ(t.CopySnapshotStripe(g1, 0, &bytes), -1);
  EXPECT_GE(t.CopySnapshotStripe(g2, 0, &bytes), 0);
  t.EndSnapshot();
  EXPECT_EQ(t.CopySnapshotStripe(g2, 1, &bytes), -1);
}

// Row metadata keeps the low 32 bits of the step. No step may read as the
// freed-row marker, and a cut across the 2^32 wrap must still tell rows
// changed before it from rows changed after it.
TEST(TableSnapshotTest, StepsAroundTwoToThe32AreOrdinarySteps) {
  auto opt = Sgd();
  TableOptions o;
  o.name = "emb";
  o.dim = 2;
  o.num_stripes = 2;
  EvPolicy ev;
  ev.steps_to_live = 10;
  o.ev = ev;
  EmbeddingTable t(o, opt.get());
  const int64_t last32 = (int64_t{1} << 32) - 1;  // the step whose low bits are all ones
  const uint64_t at_marker = Mix64(1), after = Mix64(2), before = Mix64(3);
  std::vector<float> g(2, 0.5f);
  t.Push(&before, 1, g.data(), last32 - 1);
  t.Push(&at_marker, 1, g.data(), last32);
  std::vector<float> kept(2);
  t.Pull(&at_marker, 1, kept.data());
  // A sweep at the same step sees a live row, not a freed one.
  SweepRule rule;
  rule.ttl = true;
  EXPECT_EQ(t.Sweep(last32, rule), 0u);
  EXPECT_EQ(t.size(), 2u);
  std::vector<uint64_t> values;
  t.SampleBudgetValues(16, &values);
  EXPECT_EQ(values.size(), 2u) << "a row pushed at step 2^32-1 was sampled as freed";

  // The cut at 2^32 holds both rows as they were; a push after it (step
  // 2^32 + 1, low bits 1) changes the live row only.
  const uint64_t gen = t.BeginSnapshot(last32 + 1);
  t.Push(&at_marker, 1, g.data(), last32 + 2);
  t.Push(&after, 1, g.data(), last32 + 2);
  const std::map<uint64_t, Record> snap = CopyAll(t, gen);
  ASSERT_EQ(snap.size(), 2u) << "rows pushed just before the cut at 2^32 must be in it";
  ASSERT_TRUE(snap.count(at_marker));
  EXPECT_EQ(snap.at(at_marker).values, kept);
  EXPECT_EQ(snap.at(at_marker).meta.last_step, 0xffffffffu);
  t.EndSnapshot();
  // Time to live counts across the wrap: pushed at 2^32 - 1, the row is
  // alive through 2^32 + 9 and dead at 2^32 + 10.
  EXPECT_EQ(t.Sweep(last32 + 9, rule), 0u);
  EXPECT_EQ(t.Sweep(last32 + 10, rule), 1u);  // `before`, pushed one step earlier
  EXPECT_EQ(t.Sweep(last32 + 12, rule), 0u);  // the others were pushed again at +2
  EXPECT_EQ(t.size(), 2u);
}

// Copies kept for the snapshot are one per changed row, and go away once
// their stripe is copied: a save never holds a second table.
TEST(TableSnapshotTest, ExtraMemoryIsTheChangedRowsOnly) {
  auto opt = Sgd();
  TableOptions o;
  o.name = "emb";
  o.dim = 16;
  o.num_stripes = 4;
  EmbeddingTable t(o, opt.get());
  std::vector<uint64_t> keys(20000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = Mix64(i);
  std::vector<float> g(keys.size() * 16, 0.1f);
  t.Push(keys.data(), keys.size(), g.data(), 1);
  const size_t base = t.MemoryBytes();
  const uint64_t gen = t.BeginSnapshot(1);
  t.Push(keys.data(), 100, g.data(), 2);
  t.Push(keys.data(), 100, g.data(), 3);  // the same rows again: no second copy
  const size_t during = t.MemoryBytes();
  const size_t row = (2 + 16) * sizeof(float) + sizeof(uint64_t);
  EXPECT_GE(during - base, 100 * row);
  EXPECT_LT(during - base, 4 * 100 * row) << "more kept than the 100 changed rows";
  CopyAll(t, gen);
  EXPECT_EQ(t.MemoryBytes(), base);
}

// The copy goes chunk by chunk while pushes continue: a row pushed after
// its chunk was copied keeps no second copy, and a row pushed before its
// chunk is reached is copied as it was at the cut; every row exactly once.
TEST(TableSnapshotTest, PushesDuringTheCopyLeaveEachRowOnceAsAtTheCut) {
  auto opt = Sgd();
  TableOptions o;
  o.name = "emb";
  o.dim = 2;
  o.num_stripes = 1;  // one stripe: many chunks
  EmbeddingTable t(o, opt.get());
  std::vector<uint64_t> keys(100000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = Mix64(i + 1);
  std::vector<float> g(keys.size() * 2, 0.5f);
  t.Push(keys.data(), keys.size(), g.data(), 1);
  std::vector<float> at_cut(keys.size() * 2);
  t.Pull(keys.data(), keys.size(), at_cut.data());
  const uint64_t gen = t.BeginSnapshot(1);
  std::atomic<bool> stop{false};
  // Sweeps the rows in arena order, racing the copy: some rows change
  // before their chunk is copied, others only after.
  std::thread pusher([&] {
    int64_t step = 2;
    while (!stop.load()) {
      for (size_t at = 0; at < keys.size() && !stop.load(); at += 500, ++step) {
        t.Push(keys.data() + at, 500, g.data(), step);
      }
    }
  });
  const std::map<uint64_t, Record> snap = CopyAll(t, gen);  // fails on a key copied twice
  stop = true;
  pusher.join();
  ASSERT_EQ(snap.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const Record& r = snap.at(keys[i]);
    ASSERT_EQ(r.values[0], at_cut[2 * i]) << "row " << i << " is not as it was at the cut";
    ASSERT_EQ(r.meta.last_step, 1u);
  }
}

// ---- Shards cut at one step while two workers push to both of them.

constexpr uint32_t kShards = 2;

std::unique_ptr<Shard> MakeShard(uint32_t index) {
  ShardOptions o;
  o.shard_index = index;
  o.num_shards = kShards;
  o.optimizer.type = OptimizerType::kAdamAsync;
  o.optimizer.learning_rate = 0.01f;
  o.cut_wait_ms = 20000;
  Status s;
  auto shard = Shard::Create(o, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return shard;
}

// A dense variable whose name routes to `shard`.
std::string DenseNameFor(uint32_t shard) {
  const Router router(kShards);
  for (int i = 0;; ++i) {
    const std::string name = "dense" + std::to_string(i);
    if (router.ShardOfName(name) == shard) return name;
  }
}

// Registers table "emb" (dim 4) and a 3-float dense variable that routes
// to `index` on `shard`; returns the dense variable's id.
uint32_t RegisterEmbAndDense(Shard* shard, uint32_t index) {
  RegisterTableRequest t;
  t.mutable_spec()->set_name("emb");
  t.mutable_spec()->set_dim(4);
  t.mutable_spec()->set_init_stddev(0.1f);
  RegisterTableResponse tr;
  EXPECT_TRUE(shard->RegisterTable(t, &tr).ok());
  RegisterDenseRequest d;
  d.mutable_spec()->set_name(DenseNameFor(index));
  d.mutable_spec()->add_shape(3);
  RegisterDenseResponse dr;
  EXPECT_TRUE(shard->RegisterDense(d, &dr).ok());
  return dr.dense_id();
}

PushRequest MakePush(const Router& router, uint32_t shard, uint32_t worker, uint64_t seq,
                     uint32_t dense_id) {
  std::vector<uint64_t> keys;
  for (uint64_t i = 0; keys.size() < 8; ++i) {
    const uint64_t k = Mix64(seq * 1000003 + worker * 7919 + i);
    if (router.ShardOfKey(k) == shard) keys.push_back(k);
  }
  PushRequest p;
  p.set_session(100 + worker);
  p.set_task_index(worker);
  p.set_seq(seq);
  auto* sg = p.add_sparse();
  sg->set_table_id(0);
  AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
  std::vector<float> g(keys.size() * 4, 0.25f);
  AssignBytes(g.data(), g.size(), sg->mutable_grads());
  auto* dg = p.add_dense();
  dg->set_dense_id(dense_id);
  std::vector<float> dgv(3, 0.5f);
  AssignBytes(dgv.data(), dgv.size(), dg->mutable_grads());
  return p;
}

TEST(ShardSnapshotTest, ACutUnderTwoPushingWorkersIsConsistentAcrossShards) {
  const fs::path dir = fs::temp_directory_path() / ("snapshot_test_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<uint32_t> dense_ids;
  for (uint32_t i = 0; i < kShards; ++i) {
    shards.push_back(MakeShard(i));
    dense_ids.push_back(RegisterEmbAndDense(shards[i].get(), i));
  }
  const Router router(kShards);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pushes{0};
  // Each worker pushes every step to shard 0 (which numbers it) and then to
  // shard 1 with that step and shard 0's newest cut, as PsClient does.
  auto worker = [&](uint32_t w) {
    for (uint64_t seq = 1; !stop.load(); ++seq) {
      PushRequest p0 = MakePush(router, 0, w, seq, dense_ids[0]);
      p0.set_increment_global_step(1);
      PushResponse r0;
      ASSERT_TRUE(shards[0]->Push(p0, &r0).ok());
      PushRequest p1 = MakePush(router, 1, w, seq, dense_ids[1]);
      p1.set_global_step(r0.global_step());
      p1.set_cut_step(r0.cut_step());
      PushResponse r1;
      ASSERT_TRUE(shards[1]->Push(p1, &r1).ok());
      pushes.fetch_add(1);
    }
  };
  std::thread w0(worker, 0), w1(worker, 1);
  while (pushes.load() < 300) std::this_thread::yield();
  CutResponse cut;
  ASSERT_TRUE(shards[0]->Cut(&cut).ok());
  const int64_t S = cut.global_step();
  Manifest m;
  m.global_step = S;
  m.num_shards = kShards;
  m.num_slots = kDefaultNumSlots;
  m.optimizer = "adamasync";
  SaveShardOptions so;
  so.force_cut = false;  // the live path: shard 1 cuts from the pushes' hints
  so.wait = std::chrono::milliseconds(20000);
  std::vector<SaveShardResult> results(kShards);
  for (uint32_t i = 0; i < kShards; ++i) {
    ASSERT_TRUE(SaveShard(*shards[i], dir.string(), S, &results[i], so).ok());
    m.files.push_back(results[i].file);
  }
  // Training went on during the save.
  const int64_t at_save = pushes.load();
  while (pushes.load() < at_save + 50) std::this_thread::yield();
  stop = true;
  w0.join();
  w1.join();
  EXPECT_GT(shards[0]->global_step(), S);
  ASSERT_TRUE(WriteFileAtomic((dir / "MANIFEST").string(), m.Serialize()).ok());

  // Every shard holds exactly the steps 1..S: each push advanced the table's
  // and the dense variable's beta powers once (beta^(S+1) after S pushes),
  // and no row was last updated after S.
  // The shard multiplies by the float betas, so count in those.
  const double b1 = static_cast<double>(0.9f), b2 = static_cast<double>(0.999f);
  for (uint32_t i = 0; i < kShards; ++i) {
    SCOPED_TRACE("shard " + std::to_string(i));
    auto restored = MakeShard(i);
    uint64_t rows = 0;
    Status s = RestoreShard(&restored, dir.string(), &rows);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(restored->global_step(), S);
    EXPECT_GT(rows, 0u);
    const VariableOptState st = restored->table(0)->opt_state();
    EXPECT_NEAR(std::log(st.beta1_power) / std::log(b1), static_cast<double>(S + 1), 1e-6);
    EXPECT_NEAR(std::log(st.beta2_power) / std::log(b2), static_cast<double>(S + 1), 1e-6);
    uint32_t max_step = 0;
    restored->table(0)->ForEachRow([&](uint64_t, const float*, const float*, RowMeta meta) {
      max_step = std::max(max_step, meta.last_step);
    });
    EXPECT_LE(max_step, static_cast<uint32_t>(S));
    EXPECT_GE(max_step, static_cast<uint32_t>(S) - 2) << "the newest steps are missing";
    restored->dense().ForEach([&](uint32_t, const DenseVariable& v) {
      EXPECT_NEAR(std::log(v.opt_state.beta1_power) / std::log(b1), static_cast<double>(S + 1), 1e-6)
          << v.name;
    });
    printf("shard %u: cut at step %lld held pushes %.3f ms; longest stripe copy %.3f ms\n", i,
           static_cast<long long>(S), results[i].cut_ms, results[i].max_stripe_ms);
  }
  fs::remove_all(dir);
}

// A cut nobody saves (the chief died between Cut and Save) must not keep
// copying rows on write forever: past its time to live the next push drops
// it, and a late Save of it fails instead of writing it.
TEST(ShardSnapshotTest, AnUnwrittenSnapshotExpires) {
  ShardOptions o;
  o.optimizer.type = OptimizerType::kSgd;
  o.snapshot_ttl_ms = 50;
  Status s;
  auto shard = Shard::Create(o, &s);
  const uint32_t dense_id = RegisterEmbAndDense(shard.get(), 0);
  const Router one(1);
  PushRequest p = MakePush(one, 0, 0, 1, dense_id);
  p.set_increment_global_step(1);
  PushResponse r;
  ASSERT_TRUE(shard->Push(p, &r).ok());
  const size_t base = shard->table(0)->MemoryBytes();
  CutResponse cut;
  ASSERT_TRUE(shard->Cut(&cut).ok());
  p.set_seq(2);
  ASSERT_TRUE(shard->Push(p, &r).ok());  // keeps copies: the snapshot is open
  EXPECT_GT(shard->table(0)->MemoryBytes(), base);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  p.set_seq(3);
  ASSERT_TRUE(shard->Push(p, &r).ok());  // past the time to live: dropped
  EXPECT_EQ(shard->table(0)->MemoryBytes(), base) << "the expired snapshot's copies remain";
  std::shared_ptr<const ShardSnapshot> snap;
  s = shard->AwaitSnapshot(cut.global_step(), std::chrono::milliseconds(10), false, &snap);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
}

// A retried push whose first attempt was applied changes nothing more.
TEST(ShardSnapshotTest, ARetriedPushIsAppliedOnce) {
  auto shard = MakeShard(0);
  const uint32_t dense_id = RegisterEmbAndDense(shard.get(), 0);
  const Router router(kShards);
  PushRequest p = MakePush(router, 0, 0, 1, dense_id);
  p.set_increment_global_step(1);
  PushResponse first, retry;
  ASSERT_TRUE(shard->Push(p, &first).ok());
  std::vector<float> after_first(3);
  ASSERT_TRUE(shard->dense().Pull(dense_id, after_first.data()).ok());
  ASSERT_TRUE(shard->Push(p, &retry).ok());
  EXPECT_EQ(retry.global_step(), first.global_step());
  EXPECT_EQ(shard->global_step(), 1) << "the retry numbered a second step";
  std::vector<float> after_retry(3);
  ASSERT_TRUE(shard->dense().Pull(dense_id, after_retry.data()).ok());
  EXPECT_EQ(after_retry, after_first) << "the retry was applied again";
  EXPECT_NEAR(shard->table(0)->opt_state().beta1_power, 0.81, 1e-6) << "beta powers moved twice";
  StatsResponse stats;
  shard->Stats(&stats);
  EXPECT_EQ(stats.duplicate_pushes(), 1u);
  // A trainer outside the job is refused before anything changes.
  {
    ShardOptions o = shard->options();
    o.num_trainers = 2;
    Status st;
    auto small = Shard::Create(o, &st);
    PushRequest stray = MakePush(router, 0, 0, 1, 0);
    stray.clear_dense();
    stray.set_task_index(2);
    RegisterTableRequest t2;
    t2.mutable_spec()->set_name("emb");
    t2.mutable_spec()->set_dim(4);
    RegisterTableResponse tr2;
    ASSERT_TRUE(small->RegisterTable(t2, &tr2).ok());
    PushResponse refused;
    EXPECT_EQ(small->Push(stray, &refused).code(), Code::kInvalidArgument);
    EXPECT_EQ(small->global_step(), 0);
  }
  // The next push of the same worker applies.
  PushRequest next = MakePush(router, 0, 0, 2, dense_id);
  next.set_increment_global_step(1);
  ASSERT_TRUE(shard->Push(next, &retry).ok());
  EXPECT_EQ(retry.global_step(), 2);
}

}  // namespace
}  // namespace deepfm::ps

namespace deepfm::ps {
namespace {

// Everything restore must bring back, bit for bit.
struct ShardState {
  std::map<uint64_t, std::vector<float>> rows;  // meta bits, values, slots
  std::map<std::string, std::vector<float>> dense;
  std::vector<double> powers;
  int64_t step = 0;
};

ShardState Capture(Shard& shard) {
  ShardState st;
  for (EmbeddingTable* t : shard.tables()) {
    t->ForEachRow([&](uint64_t key, const float* v, const float* sl, RowMeta meta) {
      std::vector<float>& r = st.rows[key];
      r.resize(2);
      std::memcpy(r.data(), &meta, sizeof(meta));
      r.insert(r.end(), v, v + t->dim());
      r.insert(r.end(), sl, sl + t->slot_floats());
    });
    st.powers.push_back(t->opt_state().beta1_power);
    st.powers.push_back(t->opt_state().beta2_power);
  }
  shard.dense().ForEach([&](uint32_t, const DenseVariable& v) {
    std::vector<float>& d = st.dense[v.name];
    d = v.values;
    d.insert(d.end(), v.slots.begin(), v.slots.end());
    st.powers.push_back(v.opt_state.beta1_power);
  });
  st.step = shard.global_step();
  return st;
}

class DeltaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("delta_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    ShardOptions o;
    o.optimizer.type = OptimizerType::kAdamAsync;
    o.optimizer.learning_rate = 0.01f;
    Status s;
    shard_ = Shard::Create(o, &s);
    ASSERT_TRUE(s.ok());
    RegisterTableRequest t;
    t.mutable_spec()->set_name("emb");
    t.mutable_spec()->set_dim(4);
    t.mutable_spec()->set_init_stddev(0.1f);
    RegisterTableResponse tr;
    ASSERT_TRUE(shard_->RegisterTable(t, &tr).ok());
    RegisterDenseRequest d;
    d.mutable_spec()->set_name("w");
    d.mutable_spec()->add_shape(3);
    RegisterDenseResponse dr;
    ASSERT_TRUE(shard_->RegisterDense(d, &dr).ok());
  }
  void TearDown() override { fs::remove_all(root_); }

  // One numbered push touching keys Mix64(first .. first + n).
  void Push(uint64_t first, size_t n) {
    std::vector<uint64_t> keys(n);
    for (size_t i = 0; i < n; ++i) keys[i] = Mix64(first + i);
    PushRequest p;
    p.set_increment_global_step(1);
    auto* sg = p.add_sparse();
    sg->set_table_id(0);
    AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
    std::vector<float> g(n * 4);
    for (size_t i = 0; i < g.size(); ++i) g[i] = 0.01f * static_cast<float>((i * 7 + first) % 13);
    AssignBytes(g.data(), g.size(), sg->mutable_grads());
    auto* dg = p.add_dense();
    dg->set_dense_id(0);
    const std::vector<float> dgv = {0.5f, -0.25f, 0.125f};
    AssignBytes(dgv.data(), dgv.size(), dg->mutable_grads());
    PushResponse r;
    ASSERT_TRUE(shard_->Push(p, &r).ok());
  }
  // Saves the shard at its step (a delta on `since` when > 0) and commits it.
  uint64_t Save(int64_t since) {
    return testing_util::SaveAndCommit(*shard_, root_, since, "adamasync").file.bytes;
  }

  fs::path root_;
  std::unique_ptr<Shard> shard_;
};

// A full checkpoint plus two deltas restores bit-identically to the state
// at the last delta, and a delta's size follows the rows it touched.
TEST_F(DeltaTest, AFullCheckpointPlusDeltasRestoresExactly) {
  for (int i = 0; i < 10; ++i) Push(0, 10000);  // 10k rows, steps 1..10
  const uint64_t full_bytes = Save(0);           // ckpt-10, full
  for (int i = 0; i < 3; ++i) Push(0, 100);      // 1 % of the rows, steps 11..13
  const uint64_t delta_bytes = Save(10);         // ckpt-13, delta on ckpt-10
  Push(5000, 100);                               // other rows, step 14
  Push(20000, 50);                               // new rows, step 15
  Save(13);                                      // ckpt-15, delta on ckpt-13
  const ShardState want = Capture(*shard_);
  printf("full checkpoint %llu bytes; delta for 1 %% of the rows %llu bytes (%.2f %%)\n",
         static_cast<unsigned long long>(full_bytes), static_cast<unsigned long long>(delta_bytes),
         100.0 * delta_bytes / full_bytes);
  EXPECT_LT(delta_bytes, full_bytes * 3 / 100) << "a delta for 1 % of the rows is not small";

  ShardOptions o = shard_->options();
  Status s;
  auto restored = Shard::Create(o, &s);
  uint64_t rows = 0;
  s = RestoreShard(&restored, (root_ / "ckpt-15").string(), &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const ShardState got = Capture(*restored);
  EXPECT_EQ(got.step, 15);
  EXPECT_EQ(rows, want.rows.size());
  ASSERT_EQ(got.rows.size(), want.rows.size());
  for (const auto& [key, r] : want.rows) {
    ASSERT_TRUE(got.rows.count(key)) << "key " << key << " missing";
    ASSERT_EQ(std::memcmp(got.rows.at(key).data(), r.data(), r.size() * sizeof(float)), 0)
        << "key " << key << " differs";
  }
  EXPECT_EQ(got.dense, want.dense);
  EXPECT_EQ(got.powers, want.powers);
  // A delta's base must be there: without ckpt-13 the chain is broken.
  fs::remove_all(root_ / "ckpt-13");
  auto orphan = Shard::Create(o, &s);
  s = RestoreShard(&orphan, (root_ / "ckpt-15").string(), &rows);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
}

}  // namespace
}  // namespace deepfm::ps

#include "tests/support/fault_env.h"

namespace deepfm::ps {
namespace {

using testing_util::FaultInjectionEnv;

// A save that fails at any file-system operation, in the shard files or in
// the commit (a failed write, fsync or rename, a full disk, or a crash from
// that point on), leaves the previous checkpoint the one that restores.
TEST_F(DeltaTest, ASaveThatFailsAnywhereLeavesThePreviousCheckpointRestorable) {
  for (int i = 0; i < 3; ++i) Push(0, 500);
  Save(0);  // ckpt-3: the checkpoint that must survive
  const ShardState at3 = Capture(*shard_);
  Push(100, 500);
  int failures = 0;
  for (int n = 1;; ++n) {
    SCOPED_TRACE("failing operation " + std::to_string(n));
    for (const bool crash : {false, true}) {
      FaultInjectionEnv env(Env::Default());
      if (crash) {
        env.CrashAfter(n - 1);
      } else {
        env.FailOperation(n, n % 2 ? FaultInjectionEnv::Fault::kError
                                   : FaultInjectionEnv::Fault::kNoSpace);
      }
      const int64_t step = shard_->global_step();
      const fs::path tmp = root_ / (CheckpointFolderName(step) + ".tmp");
      fs::remove_all(tmp);
      fs::remove_all(root_ / CheckpointFolderName(step));
      ASSERT_TRUE(env.CreateDirs(tmp.string()).ok() || env.injected());
      SaveShardOptions so;
      so.env = &env;
      SaveShardResult r;
      Status s = SaveShard(*shard_, tmp.string(), step, &r, so);
      if (s.ok()) {
        Manifest m;
        m.global_step = step;
        m.num_shards = 1;
        m.num_slots = kDefaultNumSlots;
        m.optimizer = "adamasync";
        m.files = {r.file};
        s = CommitCheckpoint(root_.string(), tmp.string(), m, 0, &env);
      }
      if (crash) env.DropUnsyncedData();
      if (!env.injected()) {
        // The whole save ran before the n-th operation: every point is covered.
        ASSERT_TRUE(s.ok()) << s.ToString();
        EXPECT_GT(failures, 10);
        return;
      }
      ++failures;
      // Whatever the commit reached, the latest checkpoint restores, and is
      // either the old one or the complete new one.
      std::string latest;
      ASSERT_TRUE(LatestCheckpoint(root_.string(), &latest).ok());
      auto restored = Shard::Create(shard_->options(), &s);
      uint64_t rows = 0;
      s = RestoreShard(&restored, latest, &rows);
      ASSERT_TRUE(s.ok()) << (crash ? "crash" : "failure") << ": " << s.ToString();
      const ShardState got = Capture(*restored);
      if (fs::path(latest).filename() == "ckpt-3") {
        EXPECT_EQ(got.rows, at3.rows);
        EXPECT_EQ(got.step, 3);
      } else {
        EXPECT_EQ(got.step, step);
        EXPECT_EQ(got.rows.size(), Capture(*shard_).rows.size());
      }
      // The live shard is unharmed: the snapshot ended with the save.
      fs::remove_all(root_ / CheckpointFolderName(step));
      CheckpointState state;
      ASSERT_TRUE(ReadCheckpointState(root_.string(), &state).ok());
      if (state.latest != "ckpt-3") {
        // Roll the pointer back for the next round.
        CheckpointState back;
        back.latest = "ckpt-3";
        back.all = {"ckpt-3"};
        ASSERT_TRUE(WriteFileAtomic((root_ / "checkpoint").string(), back.Serialize()).ok());
      }
    }
    ASSERT_LT(n, 500) << "the save never ran to completion";
  }
}

}  // namespace
}  // namespace deepfm::ps

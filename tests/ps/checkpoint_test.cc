// A shard's checkpoint round-trips every row, slot, dense value and optimizer
// state, and a job saved with 2 shards restores onto 3 (and 1).
#include "ps/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <fstream>
#include <algorithm>
#include <map>

#include "common/bytes.h"
#include "common/dense_partition.h"
#include "common/routing.h"
#include "tests/support/shard_copy.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;
using testing_util::Copy;
using testing_util::DenseCopy;
using testing_util::RowCopy;
using testing_util::ShardCopy;

std::unique_ptr<Shard> MakeShard(uint32_t index, uint32_t n, OptimizerType t = OptimizerType::kAdamAsync) {
  ShardOptions o;
  o.shard_index = index;
  o.num_shards = n;
  o.optimizer.type = t;
  o.optimizer.learning_rate = 0.01f;
  Status s;
  return Shard::Create(o, &s);
}

const char* const kTables[] = {"emb", "wide"};
const char* const kDense[] = {"dnn/out/bias", "dnn/layer0/kernel", "linear/w_dense", "linear/bias"};

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("shard_ckpt_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Trains 2 shards a little (two tables, four dense variables spread over
  // both shards) and saves them as ckpt-7. Shard 1 takes three pushes more
  // than shard 0, so the shards' AdamAsync powers differ and a restore that
  // takes them from the wrong file shows.
  std::string SaveTwoShards(std::vector<std::unique_ptr<Shard>>* shards) {
    Router router(2);
    for (uint32_t i = 0; i < 2; ++i) shards->push_back(MakeShard(i, 2));
    for (auto& sh : *shards) {
      for (uint32_t t = 0; t < 2; ++t) {
        RegisterTableRequest req;
        req.mutable_spec()->set_name(kTables[t]);
        req.mutable_spec()->set_dim(t == 0 ? 3 : 1);
        req.mutable_spec()->set_init_stddev(0.1f);
        req.mutable_spec()->set_seed(11 + t);
        RegisterTableResponse resp;
        EXPECT_TRUE(sh->RegisterTable(req, &resp).ok());
        EXPECT_EQ(resp.table_id(), t);
      }
    }
    std::map<std::string, uint32_t> dense_id;
    std::vector<uint32_t> owners;
    for (const char* name : kDense) {
      RegisterDenseRequest dreq;
      dreq.mutable_spec()->set_name(name);
      dreq.mutable_spec()->add_shape(2);
      dreq.mutable_spec()->add_shape(3);
      RegisterDenseResponse dresp;
      const uint32_t owner = router.ShardOfName(name);
      owners.push_back(owner);
      EXPECT_TRUE((*shards)[owner]->RegisterDense(dreq, &dresp).ok()) << name;
      dense_id[name] = dresp.dense_id();
    }
    EXPECT_NE(std::count(owners.begin(), owners.end(), 0u), 0) << "every variable on shard 1";
    EXPECT_NE(std::count(owners.begin(), owners.end(), 1u), 0) << "every variable on shard 0";
    auto push = [&](uint32_t s, int step) {
      std::vector<uint64_t> keys;
      for (uint64_t k = 0; k < 500; ++k) {
        const uint64_t key = k * 7919 + step * (k % 3);
        if (router.ShardOfKey(key) == s && (k + step) % 4 != 0) keys.push_back(key);
      }
      PushRequest p;
      p.set_global_step(step);
      if (s == 0) p.set_increment_global_step(1);
      for (uint32_t t = 0; t < 2; ++t) {
        auto* sg = p.add_sparse();
        sg->set_table_id(t);
        AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
        std::vector<float> g(keys.size() * (t == 0 ? 3 : 1));
        for (size_t i = 0; i < g.size(); ++i) g[i] = 0.01f * step * (1 + i % 5) - 0.02f;
        AssignBytes(g.data(), g.size(), sg->mutable_grads());
      }
      for (const char* name : kDense) {
        if (router.ShardOfName(name) != s) continue;
        auto* dg = p.add_dense();
        dg->set_dense_id(dense_id[name]);
        const float dgv[6] = {0.5f, -0.5f, 0.25f * step, 1, -1, 0.125f};
        AssignBytes(dgv, 6, dg->mutable_grads());
      }
      PushResponse r;
      EXPECT_TRUE((*shards)[s]->Push(p, &r).ok());
    };
    for (int step = 1; step <= 7; ++step) {
      push(0, step);
      push(1, step);
    }
    for (int extra = 0; extra < 3; ++extra) push(1, 7);
    return Commit(*shards, 7);
  }

  // Saves every shard at `step` and commits them as root_/ckpt-<step>. A
  // shard `skip` is saved but left out of the manifest, which then claims
  // one shard fewer.
  std::string Commit(std::vector<std::unique_ptr<Shard>>& shards, int64_t step, int skip = -1) {
    const fs::path tmp = root_ / ("ckpt-" + std::to_string(step) + ".tmp");
    fs::create_directories(tmp);
    Manifest m;
    m.global_step = step;
    m.num_shards = static_cast<uint32_t>(shards.size() - (skip >= 0 ? 1 : 0));
    m.num_slots = kDefaultNumSlots;
    m.optimizer = OptimizerName(shards[0]->optimizer().type());
    for (auto& sh : shards) {
      CheckpointFile f;
      uint64_t rows;
      EXPECT_TRUE(SaveShard(*sh, tmp.string(), step, &f, &rows).ok());
      if (static_cast<int>(sh->options().shard_index) != skip) m.files.push_back(f);
    }
    EXPECT_TRUE(CommitCheckpoint(root_.string(), tmp.string(), m, 0).ok());
    return (root_ / ("ckpt-" + std::to_string(step))).string();
  }

  fs::path root_;
};

void ExpectSameState(const VariableOptState& got, const VariableOptState& want, const std::string& what) {
  EXPECT_EQ(got.beta1_power, want.beta1_power) << what;
  EXPECT_EQ(got.beta2_power, want.beta2_power) << what;
}

// A restore onto 1, 2 and 3 shards, compared whole: every table's rows with
// their slots, frequency and last step; every table's and dense variable's
// optimizer state (both beta powers); every dense value and slot; the step.
TEST_F(CheckpointTest, RestoreIsComparedWholeOnOneTwoAndThreeShards) {
  std::vector<std::unique_ptr<Shard>> saved;
  const std::string folder = SaveTwoShards(&saved);
  const ShardCopy before[2] = {Copy(*saved[0]), Copy(*saved[1])};
  ASSERT_NE(before[0].tables.at("emb").state.beta1_power, before[1].tables.at("emb").state.beta1_power)
      << "the shards' powers must differ for this test to tell them apart";
  std::map<std::string, std::map<uint64_t, RowCopy>> all_rows;
  std::map<std::string, DenseCopy> all_dense;
  for (const ShardCopy& c : before) {
    for (const auto& [name, t] : c.tables) all_rows[name].insert(t.rows.begin(), t.rows.end());
    all_dense.insert(c.dense.begin(), c.dense.end());
  }
  ASSERT_GT(all_rows["emb"].size(), 300u);
  ASSERT_EQ(all_rows["wide"].size(), all_rows["emb"].size());
  ASSERT_EQ(all_dense.size(), 4u);

  for (uint32_t n : {1u, 2u, 3u}) {
    SCOPED_TRACE(std::to_string(n) + " shards");
    Router router(n);
    std::map<std::string, std::map<uint64_t, RowCopy>> rows_after;
    std::map<std::string, DenseCopy> dense_after;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; ++i) {
      auto shard = MakeShard(i, n);
      uint64_t rows = 0;
      Status s = RestoreShard(&shard, folder, &rows);
      ASSERT_TRUE(s.ok()) << s.ToString();
      total += rows;
      const ShardCopy after = Copy(*shard);
      EXPECT_EQ(after.global_step, 7);
      EXPECT_EQ(shard->restored_global_step(), 7);
      ASSERT_EQ(after.tables.size(), 2u);
      for (const auto& [name, t] : after.tables) {
        // Per-table powers: the same shard's when the count is unchanged,
        // else the first file's.
        const ShardCopy& source = before[n == 2 ? i : 0];
        ExpectSameState(t.state, source.tables.at(name).state, "table " + name + " on shard " + std::to_string(i));
        for (const auto& [k, row] : t.rows) {
          EXPECT_EQ(router.ShardOfKey(k), i) << "key " << k << " restored onto a shard that does not own it";
          EXPECT_EQ(rows_after[name].count(k), 0u) << "key on two shards";
          rows_after[name][k] = row;
        }
      }
      for (const auto& [name, d] : after.dense) {
        EXPECT_EQ(router.ShardOfName(name), i) << name << " restored onto a shard that does not own it";
        dense_after[name] = d;
      }
    }
    EXPECT_EQ(total, all_rows["emb"].size() + all_rows["wide"].size());
    for (const char* name : kTables) {
      ASSERT_EQ(rows_after[name].size(), all_rows[name].size()) << name;
      for (const auto& [k, row] : all_rows[name]) {
        const RowCopy& got = rows_after[name].at(k);
        ASSERT_EQ(got.values, row.values) << name << " key " << k;
        ASSERT_EQ(got.slots, row.slots) << name << " key " << k;
        ASSERT_EQ(got.freq, row.freq) << name << " key " << k;
        ASSERT_EQ(got.last_step, row.last_step) << name << " key " << k;
      }
    }
    ASSERT_EQ(dense_after.size(), all_dense.size());
    for (const auto& [name, d] : all_dense) {
      const DenseCopy& got = dense_after.at(name);
      EXPECT_EQ(got.shape, d.shape) << name;
      EXPECT_EQ(got.values, d.values) << name;
      EXPECT_EQ(got.slots, d.slots) << name;
      ExpectSameState(got.state, d.state, "dense " + name);
      EXPECT_NE(d.state.beta1_power, 0) << name << " was never pushed: the check proves nothing";
    }
  }
}

// A dense variable as the union of its slices on a set of shards, put
// together by offset: values, slots plane by plane (SlotFloats(w) = a*w + b,
// the b per-variable floats after the planes), and each slice's state.
struct Assembled {
  std::vector<float> values, slots;
  std::vector<VariableOptState> states;
  int slices = 0;
};
Assembled Assemble(const std::vector<std::unique_ptr<Shard>>& shards, const std::string& name,
                   int64_t whole) {
  Assembled a;
  a.values.assign(whole, std::nanf(""));
  const Optimizer& opt = shards[0]->optimizer();
  const int64_t per = opt.SlotFloats(1) - opt.SlotFloats(0), extra = opt.SlotFloats(0);
  a.slots.assign(per * whole + extra, std::nanf(""));
  for (const auto& sh : shards) {
    sh->dense().ForEach([&](uint32_t, const DenseVariable& v) {
      if (v.name != name) return;
      const int64_t n = static_cast<int64_t>(v.values.size());
      std::copy(v.values.begin(), v.values.end(), a.values.begin() + v.offset);
      for (int64_t p = 0; p < per; ++p) {
        std::copy_n(v.slots.begin() + p * n, n, a.slots.begin() + p * whole + v.offset);
      }
      if (v.offset == 0) std::copy_n(v.slots.begin() + per * n, extra, a.slots.begin() + per * whole);
      a.states.push_back(v.opt_state);
      ++a.slices;
    });
  }
  return a;
}

// Shards of a job whose dense variables are cut into slices of at least
// slice_bytes, each holding its slice of "dnn/kernel" [6, 4] (initial value i/10).
std::vector<std::unique_ptr<Shard>> SlicedShards(uint32_t n, int64_t slice_bytes, OptimizerType t) {
  std::vector<std::unique_ptr<Shard>> shards;
  for (uint32_t i = 0; i < n; ++i) {
    ShardOptions o;
    o.shard_index = i;
    o.num_shards = n;
    o.optimizer.type = t;
    o.optimizer.learning_rate = 0.01f;
    o.optimizer.decay_period = 2;  // adagraddecay: its per-variable power moves
    o.dense_slice_bytes = slice_bytes;
    Status s;
    shards.push_back(Shard::Create(o, &s));
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return shards;
}

constexpr int64_t kKernel = 24;

// Registers and trains "dnn/kernel" for 5 steps on every shard holding a
// slice, as a trainer would (each shard gets its slice of each gradient).
void TrainKernel(std::vector<std::unique_ptr<Shard>>& shards) {
  const uint32_t n = static_cast<uint32_t>(shards.size());
  const Router router(n);
  const auto plan = PartitionDense(router, "dnn/kernel", {6, 4}, shards[0]->options().dense_slice_bytes);
  std::vector<float> init(kKernel);
  for (int64_t i = 0; i < kKernel; ++i) init[i] = 0.1f * i;
  std::vector<uint32_t> id(n);
  for (const DenseSlice& sl : plan) {
    RegisterDenseRequest req;
    req.mutable_spec()->set_name("dnn/kernel");
    req.mutable_spec()->add_shape(6);
    req.mutable_spec()->add_shape(4);
    req.mutable_spec()->set_slice_offset(sl.offset);
    req.mutable_spec()->set_slice_size(sl.size);
    AssignBytes(init.data() + sl.offset, sl.size, req.mutable_init_values());
    RegisterDenseResponse resp;
    Status s = shards[sl.shard]->RegisterDense(req, &resp);
    ASSERT_TRUE(s.ok()) << s.ToString();
    id[sl.shard] = resp.dense_id();
  }
  for (int step = 1; step <= 5; ++step) {
    std::vector<float> g(kKernel);
    for (int64_t i = 0; i < kKernel; ++i) g[i] = 0.05f * step * ((i % 5) - 2) + 0.01f * i;
    for (uint32_t s = 0; s < n; ++s) {
      PushRequest p;
      p.set_global_step(step);
      if (s == 0) p.set_increment_global_step(1);
      if (const std::optional<DenseSlice> sl = SliceOnShard(plan, s)) {
        auto* dg = p.add_dense();
        dg->set_dense_id(id[s]);
        AssignBytes(g.data() + sl->offset, sl->size, dg->mutable_grads());
      }
      PushResponse r;
      Status st = shards[s]->Push(p, &r);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  }
}

// Slicing is invisible: a variable trained in 3 slices equals the same
// variable trained whole (the optimizers are elementwise), and its
// checkpoint restores onto 1, 2 and 4 shards under other slice sizes with
// every value, slot plane, per-variable slot and optimizer state in place.
TEST_F(CheckpointTest, PartitionedDenseVariablesRestoreOntoAnyShardCountAndSliceSize) {
  for (OptimizerType t : {OptimizerType::kAdamAsync, OptimizerType::kAdagradDecay}) {
    SCOPED_TRACE(OptimizerName(t));
    auto whole = SlicedShards(1, 0, t);
    TrainKernel(whole);
    auto sliced = SlicedShards(3, 16, t);
    TrainKernel(sliced);
    const Assembled want = Assemble(whole, "dnn/kernel", kKernel);
    const Assembled got = Assemble(sliced, "dnn/kernel", kKernel);
    ASSERT_EQ(got.slices, 3);
    EXPECT_EQ(got.values, want.values);
    EXPECT_EQ(got.slots, want.slots);
    for (const VariableOptState& st : got.states) ExpectSameState(st, want.states[0], "a slice");
    if (t == OptimizerType::kAdagradDecay) {
      EXPECT_EQ(want.slots.back(), 2.0f) << "the power never moved";
    }

    fs::remove_all(root_);
    const std::string folder = Commit(sliced, 5);
    for (uint32_t n : {1u, 2u, 4u}) {
      for (int64_t slice_bytes : {int64_t{0}, int64_t{16}, int64_t{40}}) {
        SCOPED_TRACE(std::to_string(n) + " shards, slices of " + std::to_string(slice_bytes) + " bytes");
        auto restored = SlicedShards(n, slice_bytes, t);
        for (auto& sh : restored) {
          uint64_t rows = 0;
          Status s = RestoreShard(&sh, folder, &rows);
          ASSERT_TRUE(s.ok()) << s.ToString();
        }
        const Assembled back = Assemble(restored, "dnn/kernel", kKernel);
        EXPECT_EQ(static_cast<size_t>(back.slices),
                  PartitionDense(Router(n), "dnn/kernel", {6, 4}, slice_bytes).size());
        EXPECT_EQ(back.values, want.values);
        EXPECT_EQ(back.slots, want.slots);
        for (const VariableOptState& st : back.states) ExpectSameState(st, want.states[0], "restored");
      }
    }
  }
}

// A checkpoint whose files leave a hole in a variable (here a manifest that
// lists two of the three shards' files, as if for a 2-shard job): the
// restore says how much it found and loads nothing.
TEST_F(CheckpointTest, AMissingSliceIsRefused) {
  auto sliced = SlicedShards(3, 16, OptimizerType::kAdamAsync);
  TrainKernel(sliced);
  const std::string folder = Commit(sliced, 5, /*skip=*/1);
  auto one = SlicedShards(1, 0, OptimizerType::kAdamAsync);
  uint64_t rows = 0;
  Status s = RestoreShard(&one[0], folder, &rows);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("holds 16 of the 24 elements of dense variable 'dnn/kernel'"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(one[0]->dense().num_variables(), 0u);
}

TEST_F(CheckpointTest, RefusesAnotherOptimizerAndCorruptFiles) {
  std::vector<std::unique_ptr<Shard>> saved;
  const std::string folder = SaveTwoShards(&saved);
  auto adagrad = MakeShard(0, 1, OptimizerType::kAdagrad);
  uint64_t rows;
  Status s = RestoreShard(&adagrad, folder, &rows);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("--optimizer=adamasync"), std::string::npos) << s.message();
  {
    std::fstream f(fs::path(folder) / ShardFileName(1, 2), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  auto fresh = MakeShard(0, 1);
  s = RestoreShard(&fresh, folder, &rows);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find(ShardFileName(1, 2)), std::string::npos) << s.message();
  EXPECT_EQ(fresh->tables().size(), 0u);  // nothing loaded from a bad checkpoint
}

}  // namespace
}  // namespace deepfm::ps

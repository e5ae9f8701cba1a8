// A shard's checkpoint round-trips every row, slot, dense value and optimizer
// state, and a job saved with 2 shards restores onto 3 (and 1).
#include "ps/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <fstream>
#include <map>

#include "common/bytes.h"
#include "common/routing.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Shard> MakeShard(uint32_t index, uint32_t n, OptimizerType t = OptimizerType::kAdamAsync) {
  ShardOptions o;
  o.shard_index = index;
  o.num_shards = n;
  o.optimizer.type = t;
  o.optimizer.learning_rate = 0.01f;
  Status s;
  return Shard::Create(o, &s);
}

struct RowCopy {
  std::vector<float> values, slots;
  uint32_t freq;
};

std::map<uint64_t, RowCopy> Snapshot(const std::vector<std::unique_ptr<Shard>>& shards) {
  std::map<uint64_t, RowCopy> out;
  for (const auto& sh : shards) {
    for (EmbeddingTable* t : sh->tables()) {
      t->ForEachRow([&](uint64_t k, const float* v, const float* s, RowMeta m) {
        EXPECT_EQ(out.count(k), 0u) << "key on two shards";
        out[k] = RowCopy{{v, v + t->dim()}, {s, s + t->slot_floats()}, m.frequency};
      });
    }
  }
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("shard_ckpt_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Trains 2 shards a little and saves them as ckpt-7.
  std::string SaveTwoShards(std::vector<std::unique_ptr<Shard>>* shards) {
    Router router(2);
    for (uint32_t i = 0; i < 2; ++i) shards->push_back(MakeShard(i, 2));
    for (auto& sh : *shards) {
      RegisterTableRequest req;
      req.mutable_spec()->set_name("emb");
      req.mutable_spec()->set_dim(3);
      req.mutable_spec()->set_init_stddev(0.1f);
      RegisterTableResponse resp;
      EXPECT_TRUE(sh->RegisterTable(req, &resp).ok());
    }
    RegisterDenseRequest dreq;
    dreq.mutable_spec()->set_name("dnn/out/bias");
    dreq.mutable_spec()->add_shape(2);
    RegisterDenseResponse dresp;
    Shard& owner = *(*shards)[router.ShardOfName("dnn/out/bias")];
    EXPECT_TRUE(owner.RegisterDense(dreq, &dresp).ok());
    for (int step = 1; step <= 7; ++step) {
      std::vector<uint64_t> keys[2];
      for (uint64_t k = 0; k < 500; ++k) {
        const uint64_t key = k * 7919 + step * (k % 3);
        keys[router.ShardOfKey(key)].push_back(key);
      }
      for (uint32_t s = 0; s < 2; ++s) {
        PushRequest p;
        p.set_global_step(step);
        if (s == 0) p.set_increment_global_step(1);
        auto* sg = p.add_sparse();
        sg->set_table_id(0);
        AssignBytes(keys[s].data(), keys[s].size(), sg->mutable_keys());
        std::vector<float> g(keys[s].size() * 3, 0.01f * step);
        AssignBytes(g.data(), g.size(), sg->mutable_grads());
        if (&owner == (*shards)[s].get()) {
          auto* dg = p.add_dense();
          dg->set_dense_id(dresp.dense_id());
          const float dgv[2] = {0.5f, -0.5f};
          AssignBytes(dgv, 2, dg->mutable_grads());
        }
        PushResponse r;
        EXPECT_TRUE((*shards)[s]->Push(p, &r).ok());
      }
    }
    const fs::path tmp = root_ / "ckpt-7.tmp";
    fs::create_directories(tmp);
    Manifest m;
    m.global_step = 7;
    m.num_shards = 2;
    m.num_slots = kDefaultNumSlots;
    m.optimizer = "adamasync";
    for (auto& sh : *shards) {
      CheckpointFile f;
      uint64_t rows;
      EXPECT_TRUE(SaveShard(*sh, tmp.string(), 7, &f, &rows).ok());
      m.files.push_back(f);
    }
    EXPECT_TRUE(CommitCheckpoint(root_.string(), tmp.string(), m, 0).ok());
    return (root_ / "ckpt-7").string();
  }

  fs::path root_;
};

TEST_F(CheckpointTest, RestoresOntoMoreAndFewerShards) {
  std::vector<std::unique_ptr<Shard>> saved;
  const std::string folder = SaveTwoShards(&saved);
  const auto before = Snapshot(saved);
  ASSERT_GT(before.size(), 400u);
  for (uint32_t n : {1u, 2u, 3u}) {
    std::vector<std::unique_ptr<Shard>> restored;
    uint64_t total = 0;
    Router router(n);
    for (uint32_t i = 0; i < n; ++i) {
      restored.push_back(MakeShard(i, n));
      uint64_t rows = 0;
      Status s = RestoreShard(restored.back().get(), folder, &rows);
      ASSERT_TRUE(s.ok()) << s.ToString();
      total += rows;
      EXPECT_EQ(restored.back()->global_step(), 7);
      // Every row sits on the shard that owns its slot under the new count.
      restored.back()->table(0)->ForEachRow([&](uint64_t k, const float*, const float*, RowMeta) {
        EXPECT_EQ(router.ShardOfKey(k), i);
      });
    }
    EXPECT_EQ(total, before.size());
    const auto after = Snapshot(restored);
    ASSERT_EQ(after.size(), before.size());
    for (const auto& [k, row] : before) {
      ASSERT_EQ(after.at(k).values, row.values);
      ASSERT_EQ(after.at(k).slots, row.slots);
      ASSERT_EQ(after.at(k).freq, row.freq);
    }
    // The dense variable and its AdamAsync powers came along.
    const Shard& owner = *restored[router.ShardOfName("dnn/out/bias")];
    ASSERT_EQ(const_cast<Shard&>(owner).dense().num_variables(), 1u);
    const DenseVariable* v = const_cast<Shard&>(owner).dense().Get(0);
    EXPECT_NEAR(v->opt_state.beta1_power, std::pow(0.9, 8), 1e-6);
  }
}

TEST_F(CheckpointTest, RefusesAnotherOptimizerAndCorruptFiles) {
  std::vector<std::unique_ptr<Shard>> saved;
  const std::string folder = SaveTwoShards(&saved);
  auto adagrad = MakeShard(0, 1, OptimizerType::kAdagrad);
  uint64_t rows;
  Status s = RestoreShard(adagrad.get(), folder, &rows);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("--optimizer=adamasync"), std::string::npos) << s.message();
  {
    std::fstream f(fs::path(folder) / ShardFileName(1, 2), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  auto fresh = MakeShard(0, 1);
  s = RestoreShard(fresh.get(), folder, &rows);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find(ShardFileName(1, 2)), std::string::npos) << s.message();
  EXPECT_EQ(fresh->tables().size(), 0u);  // nothing loaded from a bad checkpoint
}

}  // namespace
}  // namespace deepfm::ps

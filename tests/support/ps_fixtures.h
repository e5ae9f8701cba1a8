// Small pieces the parameter-server tests share: a plain SGD optimizer, a
// table registered and pushed to through the shard's own RPC handlers, and
// saving one shard as a committed checkpoint.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/checkpoint_manifest.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/shard.h"

namespace deepfm::testing_util {

// w -= learning_rate * g, with nothing else to track.
inline std::unique_ptr<ps::Optimizer> SgdOptimizer(float learning_rate) {
  ps::OptimizerOptions o;
  o.type = ps::OptimizerType::kSgd;
  o.learning_rate = learning_rate;
  std::unique_ptr<ps::Optimizer> opt;
  EXPECT_TRUE(ps::MakeOptimizer(o, &opt).ok());
  return opt;
}

// Registers table `name` with rows of `dim` floats on `shard`.
inline void AddTable(ps::Shard& shard, const std::string& name, uint32_t dim,
                     float init_stddev = 0, uint64_t seed = 0) {
  ps::RegisterTableRequest req;
  req.mutable_spec()->set_name(name);
  req.mutable_spec()->set_dim(dim);
  req.mutable_spec()->set_init_stddev(init_stddev);
  req.mutable_spec()->set_seed(seed);
  ps::RegisterTableResponse resp;
  EXPECT_TRUE(shard.RegisterTable(req, &resp).ok());
}

// Pushes grads (keys.size() rows of table 0) as global step `step`, which
// the push numbers (as a chief shard's do).
inline void PushKeys(ps::Shard& shard, int64_t step, const std::vector<uint64_t>& keys,
                     const std::vector<float>& grads) {
  ps::PushRequest p;
  p.set_global_step(step);
  p.set_increment_global_step(1);
  auto* sg = p.add_sparse();
  sg->set_table_id(0);
  AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
  AssignBytes(grads.data(), grads.size(), sg->mutable_grads());
  ps::PushResponse r;
  const Status s = shard.Push(p, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

struct CommittedCheckpoint {
  std::string folder;  // root/ckpt-<step>
  CheckpointFile file;
};

// Saves `shard` (the only one of its job) at its global step, a delta on
// ckpt-<since> when since > 0, and commits it as root/ckpt-<step> with a
// manifest naming `optimizer`.
inline CommittedCheckpoint SaveAndCommit(ps::Shard& shard, const std::filesystem::path& root,
                                         int64_t since, const std::string& optimizer) {
  const int64_t step = shard.global_step();
  const std::filesystem::path tmp = root / (CheckpointFolderName(step) + ".tmp");
  std::filesystem::create_directories(tmp);
  ps::SaveShardOptions so;
  so.since_step = since > 0 ? since : -1;
  ps::SaveShardResult r;
  EXPECT_TRUE(ps::SaveShard(shard, tmp.string(), step, &r, so).ok());
  Manifest m;
  m.global_step = step;
  m.num_shards = 1;
  m.num_slots = kDefaultNumSlots;
  m.optimizer = optimizer;
  m.files = {r.file};
  if (since > 0) {
    m.base = CheckpointFolderName(since);
    m.base_step = since;
  }
  EXPECT_TRUE(CommitCheckpoint(root.string(), tmp.string(), m, 0).ok());
  return {(root / CheckpointFolderName(step)).string(), r.file};
}

}  // namespace deepfm::testing_util

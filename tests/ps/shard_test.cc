#include "ps/shard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/bf16.h"
#include "common/bytes.h"

namespace deepfm::ps {
namespace {

std::unique_ptr<Shard> MakeShard(OptimizerType t = OptimizerType::kSgd) {
  ShardOptions o;
  o.optimizer.type = t;
  o.optimizer.learning_rate = 0.5f;
  Status s;
  auto shard = Shard::Create(o, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return shard;
}

uint32_t AddTable(Shard* shard, const std::string& name, uint32_t dim) {
  RegisterTableRequest req;
  req.mutable_spec()->set_name(name);
  req.mutable_spec()->set_dim(dim);
  req.mutable_spec()->set_init_stddev(0.1f);
  req.mutable_spec()->set_seed(1);
  RegisterTableResponse resp;
  EXPECT_TRUE(shard->RegisterTable(req, &resp).ok());
  return resp.table_id();
}

std::vector<float> PullRows(Shard* shard, uint32_t table, const std::vector<uint64_t>& keys) {
  PullRequest req;
  auto* sp = req.add_sparse();
  sp->set_table_id(table);
  AssignBytes(keys.data(), keys.size(), sp->mutable_keys());
  PullResponse resp;
  EXPECT_TRUE(shard->Pull(req, &resp).ok());
  std::vector<float> v;
  CopyOut(resp.sparse(0).values(), &v);
  return v;
}

TEST(ShardTest, PullPushPullOverEveryTable) {
  auto shard = MakeShard();
  const uint32_t a = AddTable(shard.get(), "a", 2);
  const uint32_t b = AddTable(shard.get(), "b", 3);
  EXPECT_NE(a, b);
  EXPECT_EQ(AddTable(shard.get(), "a", 2), a);  // same spec: same table
  const std::vector<uint64_t> keys = {10, 20};
  const auto before = PullRows(shard.get(), a, keys);
  ASSERT_EQ(before.size(), 4u);
  PushRequest push;
  push.set_global_step(1);
  auto* sg = push.add_sparse();
  sg->set_table_id(a);
  AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
  const std::vector<float> g = {1, 2, 3, 4};
  AssignBytes(g.data(), g.size(), sg->mutable_grads());
  PushResponse pr;
  ASSERT_TRUE(shard->Push(push, &pr).ok());
  const auto after = PullRows(shard.get(), a, keys);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(after[i], before[i] - 0.5f * g[i]);
  EXPECT_EQ(PullRows(shard.get(), b, keys).size(), 6u);
}

TEST(ShardTest, Bf16PullAndPushRoundToNearestEven) {
  auto shard = MakeShard();
  const uint32_t t = AddTable(shard.get(), "t", 4);
  const std::vector<uint64_t> keys = {5};
  const auto f32 = PullRows(shard.get(), t, keys);
  PullRequest req;
  req.set_dtype(BF16);
  auto* sp = req.add_sparse();
  sp->set_table_id(t);
  AssignBytes(keys.data(), 1, sp->mutable_keys());
  PullResponse resp;
  ASSERT_TRUE(shard->Pull(req, &resp).ok());
  ASSERT_EQ(resp.sparse(0).values().size(), 8u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(LoadAt<uint16_t>(resp.sparse(0).values(), i), FloatToBf16(f32[i]));
  }
  PushRequest push;
  push.set_dtype(BF16);
  auto* sg = push.add_sparse();
  sg->set_table_id(t);
  AssignBytes(keys.data(), 1, sg->mutable_keys());
  const uint16_t g[4] = {FloatToBf16(1.0f), FloatToBf16(-1.0f), FloatToBf16(0.5f), 0};
  AssignBytes(g, 4, sg->mutable_grads());
  PushResponse pr;
  ASSERT_TRUE(shard->Push(push, &pr).ok());
  const auto after = PullRows(shard.get(), t, keys);
  EXPECT_FLOAT_EQ(after[0], f32[0] - 0.5f);
  EXPECT_FLOAT_EQ(after[1], f32[1] + 0.5f);
  EXPECT_FLOAT_EQ(after[2], f32[2] - 0.25f);
  EXPECT_FLOAT_EQ(after[3], f32[3]);
}

// A bad push is refused with INVALID_ARGUMENT, says what was wrong, and leaves
// every row and dense value as it was, even when other parts were valid.
TEST(ShardTest, BadPushesLeaveStateUnchanged) {
  auto shard = MakeShard();
  const uint32_t t = AddTable(shard.get(), "emb", 2);
  RegisterDenseRequest dreq;
  dreq.mutable_spec()->set_name("w");
  dreq.mutable_spec()->add_shape(2);
  RegisterDenseResponse dresp;
  ASSERT_TRUE(shard->RegisterDense(dreq, &dresp).ok());
  const std::vector<uint64_t> keys = {1, 2};
  const auto before = PullRows(shard.get(), t, keys);

  auto make = [&](std::vector<float> g, uint32_t table, std::vector<float> dense_g) {
    PushRequest p;
    auto* sg = p.add_sparse();
    sg->set_table_id(table);
    AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
    AssignBytes(g.data(), g.size(), sg->mutable_grads());
    auto* dg = p.add_dense();
    dg->set_dense_id(dresp.dense_id());
    AssignBytes(dense_g.data(), dense_g.size(), dg->mutable_grads());
    return p;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    PushRequest req;
    std::string expect;
  } cases[] = {
      {make({1, 1, 1, 1}, 7, {1, 1}), "unknown table id 7"},
      {make({1, 1, 1}, t, {1, 1}), "need 4 gradient values, got 3"},
      {make({1, nan, 1, 1}, t, {1, 1}), "gradient 1 is not finite"},
      {make({1, 1, 1, 1}, t, {1, inf}), "dense variable 'w'"},
      {make({1, 1, 1, 1}, t, {1, 1, 1}), "has 2 elements"},
  };
  for (auto& c : cases) {
    PushResponse r;
    Status s = shard->Push(c.req, &r);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.expect;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
  }
  PushRequest odd = make({1, 1, 1, 1}, t, {1, 1});
  odd.mutable_sparse(0)->mutable_keys()->push_back('x');
  PushResponse r;
  EXPECT_EQ(shard->Push(odd, &r).code(), Code::kInvalidArgument);

  EXPECT_EQ(PullRows(shard.get(), t, keys), before);
  PullRequest dpull;
  dpull.add_dense_ids(dresp.dense_id());
  PullResponse dp;
  ASSERT_TRUE(shard->Pull(dpull, &dp).ok());
  EXPECT_EQ(LoadAt<float>(dp.dense(0).values(), 0), 0.0f);
  EXPECT_EQ(LoadAt<float>(dp.dense(0).values(), 1), 0.0f);
  EXPECT_EQ(shard->global_step(), 0);
}

TEST(ShardTest, BadPullsAreRefused) {
  auto shard = MakeShard();
  PullRequest req;
  req.add_sparse()->set_table_id(3);
  PullResponse resp;
  EXPECT_EQ(shard->Pull(req, &resp).code(), Code::kInvalidArgument);
  PullRequest dreq;
  dreq.add_dense_ids(0);
  EXPECT_EQ(shard->Pull(dreq, &resp).code(), Code::kInvalidArgument);
}

TEST(ShardTest, TableSpecConflictIsRefused) {
  auto shard = MakeShard();
  AddTable(shard.get(), "t", 4);
  RegisterTableRequest req;
  req.mutable_spec()->set_name("t");
  req.mutable_spec()->set_dim(8);
  RegisterTableResponse resp;
  EXPECT_EQ(shard->RegisterTable(req, &resp).code(), Code::kFailedPrecondition);
  req.mutable_spec()->set_name("z");
  req.mutable_spec()->set_dim(0);
  EXPECT_EQ(shard->RegisterTable(req, &resp).code(), Code::kInvalidArgument);
}

// A shard holds only the slice the partition plan gives it: another slice, a
// whole variable that is partitioned, or a variable that lies elsewhere is
// refused, naming both ranges, and registers nothing.
TEST(ShardTest, RegisterDenseAcceptsOnlyThisShardsSlice) {
  ShardOptions o;
  o.shard_index = 1;
  o.num_shards = 2;
  o.dense_slice_bytes = 16;
  Status st;
  auto shard = Shard::Create(o, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  const auto plan = PartitionDense(Router(2), "w", {4, 2}, 16);  // two slices of 2 rows
  ASSERT_EQ(plan.size(), 2u);
  const DenseSlice mine = *SliceOnShard(plan, 1);
  const DenseSlice theirs = *SliceOnShard(plan, 0);
  auto request = [](int64_t offset, int64_t size) {
    RegisterDenseRequest req;
    req.mutable_spec()->set_name("w");
    req.mutable_spec()->add_shape(4);
    req.mutable_spec()->add_shape(2);
    req.mutable_spec()->set_slice_offset(offset);
    req.mutable_spec()->set_slice_size(size);
    std::vector<float> init(std::clamp<int64_t>(size, 0, 8), 0.5f);
    AssignBytes(init.data(), init.size(), req.mutable_init_values());
    return req;
  };
  RegisterDenseResponse resp;
  for (const auto& req : {request(theirs.offset, theirs.size), request(0, 0), request(0, 8),
                          request(mine.offset, mine.size + 2)}) {
    Status s = shard->RegisterDense(req, &resp);
    EXPECT_EQ(s.code(), Code::kFailedPrecondition) << req.ShortDebugString();
    EXPECT_NE(s.message().find("holds [" + std::to_string(mine.offset) + ", " +
                               std::to_string(mine.offset + mine.size) + ")"),
              std::string::npos)
        << s.message();
  }
  // A slice outside the variable is bad input, whatever the numbers.
  for (const auto& req : {request(std::numeric_limits<int64_t>::max(), 1), request(-2, 2),
                          request(4, 8), request(0, -1)}) {
    Status s = shard->RegisterDense(req, &resp);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << req.ShortDebugString();
    EXPECT_NE(s.message().find("do not lie within its 8 elements"), std::string::npos)
        << s.message();
  }
  EXPECT_EQ(shard->dense().num_variables(), 0u);
  Status s = shard->RegisterDense(request(mine.offset, mine.size), &resp);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const DenseVariable* v = shard->dense().Get(resp.dense_id());
  EXPECT_EQ(v->offset, mine.offset);
  EXPECT_EQ(v->values, std::vector<float>(mine.size, 0.5f));
  EXPECT_EQ(v->shape, (std::vector<int64_t>{4, 2}));
  // A tiny variable stays whole, on the shard its name routes to.
  std::string here, there;
  for (int i = 0; here.empty() || there.empty(); ++i) {
    const std::string name = "b" + std::to_string(i);
    (Router(2).ShardOfName(name) == 1 ? here : there) = name;
  }
  RegisterDenseRequest small;
  small.mutable_spec()->set_name(here);
  small.mutable_spec()->add_shape(3);
  EXPECT_TRUE(shard->RegisterDense(small, &resp).ok());
  small.mutable_spec()->set_name(there);
  s = shard->RegisterDense(small, &resp);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("holds none of it"), std::string::npos) << s.message();
}

TEST(ShardTest, GlobalStepIsAdvancedByTheChiefPushAndObservedByOthers) {
  auto shard = MakeShard(OptimizerType::kAdam);
  PushRequest p;
  p.set_increment_global_step(1);
  PushResponse r;
  ASSERT_TRUE(shard->Push(p, &r).ok());
  ASSERT_TRUE(shard->Push(p, &r).ok());
  EXPECT_EQ(r.global_step(), 2);
  PushRequest q;
  q.set_global_step(10);
  ASSERT_TRUE(shard->Push(q, &r).ok());
  EXPECT_EQ(shard->global_step(), 10);
  StepRequest sr;
  StepResponse sresp;
  sr.set_increment(5);
  ASSERT_TRUE(shard->GlobalStep(sr, &sresp).ok());
  EXPECT_EQ(sresp.global_step(), 15);
  StatsResponse stats;
  shard->Stats(&stats);
  EXPECT_EQ(stats.push_requests(), 3u);
  EXPECT_EQ(stats.optimizer(), "adam");
}

TEST(ShardTest, WorkerDoneCountsDistinctWorkers) {
  auto shard = MakeShard();
  WorkerDoneRequest req;
  WorkerDoneResponse resp;
  req.set_task_index(1);
  ASSERT_TRUE(shard->WorkerDone(req, &resp).ok());
  EXPECT_EQ(resp.done(), 1u);
  ASSERT_TRUE(shard->WorkerDone(req, &resp).ok());  // a retry does not count twice
  EXPECT_EQ(resp.done(), 1u);
  req.set_task_index(0);
  ASSERT_TRUE(shard->WorkerDone(req, &resp).ok());
  EXPECT_EQ(resp.done(), 2u);
}

}  // namespace
}  // namespace deepfm::ps

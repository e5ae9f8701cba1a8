// The dense partition plan: worked examples of where each slice goes, and
// the invariants every plan keeps (exact cover, row alignment, distinct
// shards, the minimum slice).
#include "common/dense_partition.h"

#include <gtest/gtest.h>

namespace deepfm {
namespace {

std::vector<DenseSlice> Plan(const std::string& name, std::vector<int64_t> shape, uint32_t shards,
                             int64_t min_bytes) {
  return PartitionDense(Router(shards), name, shape, min_bytes);
}

TEST(DensePartitionTest, AWorkedExampleCutsRowsAndStartsAtTheNamesShard) {
  // 10 rows of 3 over 3 shards, slices of at least 4 bytes: row ranges
  // [0,3) [3,6) [6,10), so elements [0,9) [9,18) [18,30).
  const Router router(3);
  const uint32_t first = router.ShardOfName("w");
  const auto plan = PartitionDense(router, "w", {10, 3}, 4);
  ASSERT_EQ(plan.size(), 3u);
  const int64_t offsets[] = {0, 9, 18}, sizes[] = {9, 9, 12};
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(plan[i].offset, offsets[i]) << i;
    EXPECT_EQ(plan[i].size, sizes[i]) << i;
    EXPECT_EQ(plan[i].shard, (first + i) % 3) << i;
  }
  EXPECT_EQ(SliceOnShard(plan, (first + 1) % 3)->offset, 9);
}

TEST(DensePartitionTest, SmallVariablesStayWholeOnTheShardTheirNameRoutesTo) {
  const Router router(4);
  for (const std::string name : {"a", "linear/bias", "dnn/out/bias"}) {
    // 16383 floats: one byte short of two 32 KiB slices.
    for (const auto& plan :
         {PartitionDense(router, name, {16383}, 32 << 10),
          PartitionDense(router, name, {1 << 20}, 0), PartitionDense(router, name, {}, 1)}) {
      ASSERT_EQ(plan.size(), 1u) << name;
      EXPECT_EQ(plan[0].shard, router.ShardOfName(name)) << name;
      EXPECT_EQ(plan[0].offset, 0);
    }
    EXPECT_FALSE(
        SliceOnShard(PartitionDense(router, name, {3}, 16), (router.ShardOfName(name) + 1) % 4));
  }
  // Exactly two minimum slices' worth: two slices.
  EXPECT_EQ(Plan("a", {16384}, 4, 32 << 10).size(), 2u);
}

TEST(DensePartitionTest, NeverMoreSlicesThanShardsOrRows) {
  EXPECT_EQ(Plan("k", {1000, 10}, 4, 4).size(), 4u);
  EXPECT_EQ(Plan("k", {3, 1000}, 8, 4).size(), 3u);
  EXPECT_EQ(Plan("k", {1, 1000}, 8, 4).size(), 1u);
}

TEST(DensePartitionTest, EveryPlanCoversTheVariableOnceInWholeRowsOnDistinctShards) {
  for (uint32_t shards : {1u, 2u, 3u, 4u, 7u, 16u}) {
    for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
             {429, 1024}, {1024, 256}, {13}, {32, 1}, {5, 2, 3}, {}}) {
      for (int64_t min_bytes : {0, 4, 100, 64 << 10}) {
        const auto plan = Plan("v", shape, shards, min_bytes);
        int64_t rows = shape.empty() ? 1 : shape[0], row = 1;
        for (size_t i = 1; i < shape.size(); ++i) row *= shape[i];
        int64_t next = 0;
        std::vector<bool> used(shards, false);
        for (const DenseSlice& s : plan) {
          EXPECT_EQ(s.offset, next);
          EXPECT_GT(s.size, 0);
          EXPECT_EQ(s.offset % row, 0);
          EXPECT_EQ(s.size % row, 0);
          if (plan.size() > 1) {
            EXPECT_GE(s.size * 4, min_bytes);
          }
          ASSERT_LT(s.shard, shards);
          EXPECT_FALSE(used[s.shard]) << "two slices on shard " << s.shard;
          used[s.shard] = true;
          next += s.size;
        }
        EXPECT_EQ(next, rows * row);
      }
    }
  }
}

}  // namespace
}  // namespace deepfm

#include "ps/dense_store.h"
#include "tests/support/ps_fixtures.h"

#include <gtest/gtest.h>

namespace deepfm::ps {
namespace {

std::unique_ptr<Optimizer> Sgd() { return testing_util::SgdOptimizer(0.5f); }

TEST(DenseStoreTest, FirstRegistrationWins) {
  auto opt = Sgd();
  DenseStore store(opt.get());
  uint32_t id = 9;
  bool created = false;
  ASSERT_TRUE(store.Register("w", {2, 2}, {1, 2, 3, 4}, &id, &created).ok());
  EXPECT_TRUE(created);
  uint32_t id2 = 9;
  ASSERT_TRUE(store.Register("w", {2, 2}, {9, 9, 9, 9}, &id2, &created).ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(id, id2);
  std::vector<float> v(4);
  ASSERT_TRUE(store.Pull(id, v.data()).ok());
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4}));
}

TEST(DenseStoreTest, OtherShapeIsRefused) {
  auto opt = Sgd();
  DenseStore store(opt.get());
  uint32_t id;
  bool created;
  ASSERT_TRUE(store.Register("w", {4}, {}, &id, &created).ok());
  Status s = store.Register("w", {2, 2}, {}, &id, &created);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("[4]"), std::string::npos) << s.message();
  EXPECT_FALSE(store.Register("x", {3}, {1, 2}, &id, &created).ok());
  EXPECT_FALSE(store.Register("y", {0}, {}, &id, &created).ok());
  EXPECT_FALSE(store.Register("", {1}, {}, &id, &created).ok());
}

TEST(DenseStoreTest, PushAppliesOptimizer) {
  auto opt = Sgd();
  DenseStore store(opt.get());
  uint32_t id;
  bool created;
  ASSERT_TRUE(store.Register("b", {3}, {1, 1, 1}, &id, &created).ok());
  const float g[3] = {1, 0, -2};
  ASSERT_TRUE(store.Push(id, g, 1).ok());
  std::vector<float> v(3);
  ASSERT_TRUE(store.Pull(id, v.data()).ok());
  EXPECT_EQ(v, (std::vector<float>{0.5f, 1.0f, 2.0f}));
  EXPECT_FALSE(store.Push(id + 1, g, 1).ok());
  EXPECT_EQ(store.TotalElements(), 3u);
}

// Batch normalisation's moving statistics: no optimizer, the value follows
// each push's batch statistic, m <- m - (m - batch) * (1 - momentum).
TEST(DenseStoreTest, MovingAverageFollowsThePushedStatisticWithoutTheOptimizer) {
  auto opt = Sgd();
  DenseStore store(opt.get());
  uint32_t id;
  bool created;
  const DenseUpdate moving{true, 0.75f};
  ASSERT_TRUE(store.Register("bn/moving_mean", {2}, 0, 2, {1, -2}, &id, &created, moving).ok());
  const float batch[2] = {5, 2};
  ASSERT_TRUE(store.Push(id, batch, 1).ok());
  std::vector<float> v(2);
  ASSERT_TRUE(store.Pull(id, v.data()).ok());
  // 1 - (1 - 5) * 0.25 = 2; -2 - (-2 - 2) * 0.25 = -1 (SGD would give -1.5, -3).
  EXPECT_EQ(v, (std::vector<float>{2.0f, -1.0f}));
  ASSERT_TRUE(store.Push(id, batch, 2).ok());
  ASSERT_TRUE(store.Pull(id, v.data()).ok());
  EXPECT_EQ(v, (std::vector<float>{2.75f, -0.25f}));

  // Registered again, it must be the same kind with the same momentum.
  uint32_t again;
  EXPECT_TRUE(store.Register("bn/moving_mean", {2}, 0, 2, {}, &again, &created, moving).ok());
  EXPECT_EQ(again, id);
  Status s = store.Register("bn/moving_mean", {2}, 0, 2, {}, &again, &created);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("moving average"), std::string::npos) << s.message();
  EXPECT_FALSE(store.Register("bn/moving_mean", {2}, 0, 2, {}, &again, &created, {true, 0.5f}).ok());
  EXPECT_FALSE(store.Register("w", {2}, 0, 2, {}, &again, &created, {true, 1.0f}).ok());
  EXPECT_FALSE(store.Register("w", {2}, 0, 2, {}, &again, &created, {true, -0.1f}).ok());
  EXPECT_EQ(store.Get(id)->update.momentum, 0.75f);
}

}  // namespace
}  // namespace deepfm::ps

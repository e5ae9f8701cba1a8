#include "common/routing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace deepfm {
namespace {

// Draws ranks from a Zipf(s) law over [1, n] by inverting the CDF table.
std::vector<uint64_t> ZipfKeys(int count, int n, double s, uint64_t seed) {
  std::vector<double> cdf(n);
  double acc = 0;
  for (int i = 0; i < n; ++i) cdf[i] = (acc += 1.0 / std::pow(i + 1, s));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, acc);
  std::vector<uint64_t> keys(count);
  for (auto& k : keys) {
    const int rank = static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    k = FeatureKey(static_cast<uint32_t>(rank % 26), std::to_string(rank));
  }
  return keys;
}

TEST(RouterTest, ZipfKeysSpreadEvenlyOverShards) {
  // Distinct keys are what a shard stores; each shard must hold within 2% of
  // an even share of 1M Zipf-drawn keys' distinct set.
  const auto keys = ZipfKeys(1000000, 2000000, 1.05, 7);
  std::vector<uint64_t> uniq(keys);
  std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  ASSERT_GT(uniq.size(), 100000u);
  for (uint32_t shards : {2u, 3u, 4u, 8u}) {
    Router router(shards);
    std::vector<double> count(shards, 0);
    for (uint64_t k : uniq) count[router.ShardOfKey(k)] += 1;
    const double even = static_cast<double>(uniq.size()) / shards;
    for (uint32_t s = 0; s < shards; ++s) {
      EXPECT_NEAR(count[s] / even, 1.0, 0.02) << "shards=" << shards << " shard=" << s;
    }
  }
}

TEST(RouterTest, SlotDoesNotDependOnShardCount) {
  Router a(2), b(5);
  for (uint64_t k = 1; k < 10000; ++k) {
    EXPECT_EQ(a.SlotOfKey(k * 7919), b.SlotOfKey(k * 7919));
  }
}

TEST(RouterTest, OwnersAreContiguousRanges) {
  Router r(3, 12);
  EXPECT_EQ(r.owners(), (std::vector<uint32_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
}

TEST(RouterTest, RejectsBadConfigurations) {
  EXPECT_THROW(Router(0), std::invalid_argument);
  EXPECT_THROW(Router(10, 4), std::invalid_argument);
  Router r(2, 4);
  EXPECT_THROW(r.SetOwners({0, 1, 2, 0}), std::invalid_argument);
  EXPECT_THROW(r.SetOwners({0, 1}), std::invalid_argument);
  r.SetOwners({1, 1, 0, 0});
  EXPECT_EQ(r.ShardOfSlot(0), 1u);
}

}  // namespace
}  // namespace deepfm

#include "common/hash.h"

#include <gtest/gtest.h>

#include "common/random.h"

namespace deepfm {
namespace {

TEST(HashTest, FeatureKeyIsStableAcrossReleases) {
  // These values are part of the checkpoint format: a change here means every
  // saved model's keys move. Update only with a format version bump.
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  const uint64_t k = FeatureKey(0, "68fd1e64");
  EXPECT_EQ(k, FeatureKey(0, "68fd1e64"));
  EXPECT_NE(k, FeatureKey(1, "68fd1e64"));
  EXPECT_NE(FeatureKey(0, ""), FeatureKey(1, ""));
}

TEST(HashTest, Mix64IsABijectionOnSamples) {
  EXPECT_EQ(Mix64(0), 0u);
  EXPECT_NE(Mix64(1), Mix64(2));
}

TEST(RandomTest, RowInitDependsOnlyOnKeyAndSeed) {
  float a[17], b[17], c[17];
  InitRowNormal(42, 1, 0.01f, a, 17);
  InitRowNormal(42, 1, 0.01f, b, 17);
  InitRowNormal(42, 2, 0.01f, c, 17);
  double sq = 0;
  for (int i = 0; i < 17; ++i) {
    EXPECT_EQ(a[i], b[i]);
    sq += a[i] * a[i];
  }
  EXPECT_NE(a[0], c[0]);
  EXPECT_LT(sq / 17, 0.01 * 0.01 * 4);
}

TEST(RandomTest, NormalHasUnitMoments) {
  SplitMix64 rng(3);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = rng.Normal();
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
}

}  // namespace
}  // namespace deepfm

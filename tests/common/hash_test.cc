// The key hash, the mixer and the slot function are a format: every saved
// model's keys and slot groups depend on them. The expected values below were
// computed outside this code base (a few lines of Python over arbitrary-size
// integers, masked to 64 bits), and the SplitMix64 and FNV-1a ones are the
// published reference values of those algorithms. Change them only with a
// checkpoint format version bump.
#include "common/hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/random.h"
#include "common/routing.h"

namespace deepfm {
namespace {

TEST(HashTest, Fnv1a64MatchesTheReferenceVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(HashTest, SplitMix64MatchesTheReferenceStream) {
  // SplitMix64 seeded with 0 (Vigna's splitmix64.c): its first outputs.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.Next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.Next(), 0x06c45d188009454fULL);
}

TEST(HashTest, Mix64GoldenValues) {
  EXPECT_EQ(Mix64(0), 0x0000000000000000ULL);
  EXPECT_EQ(Mix64(1), 0x5692161d100b05e5ULL);
  EXPECT_EQ(Mix64(2), 0xdbd238973a2b148aULL);
  EXPECT_EQ(Mix64(0xdeadbeef), 0x4e062702ec929eeaULL);
  EXPECT_EQ(Mix64(~0ULL), 0xb4d055fcf2cbbd7bULL);
}

// Inverse of x ^= x >> s.
uint64_t UnXorShift(uint64_t y, int s) {
  uint64_t x = y;
  for (int i = 0; i < 64 / s + 1; ++i) x = y ^ (x >> s);
  return x;
}

// Multiplicative inverse of an odd number mod 2^64 (Newton: each step doubles
// the correct low bits).
uint64_t InverseOdd(uint64_t a) {
  uint64_t x = a;  // correct to 3 bits for any odd a
  for (int i = 0; i < 5; ++i) x *= 2 - a * x;
  return x;
}

uint64_t UnMix64(uint64_t y) {
  y = UnXorShift(y, 31);
  y *= InverseOdd(0x94d049bb133111ebULL);
  y = UnXorShift(y, 27);
  y *= InverseOdd(0xbf58476d1ce4e5b9ULL);
  return UnXorShift(y, 30);
}

TEST(HashTest, Mix64IsABijection) {
  // An explicit inverse that undoes Mix64 on a million random and a million
  // consecutive inputs proves those outputs distinct and Mix64 invertible
  // there; a changed constant or shift breaks the round trip.
  std::mt19937_64 rng(12);
  for (int i = 0; i < 1000000; ++i) {
    const uint64_t x = rng();
    ASSERT_EQ(UnMix64(Mix64(x)), x) << std::hex << x;
    ASSERT_EQ(UnMix64(Mix64(i)), static_cast<uint64_t>(i));
  }
}

TEST(HashTest, FeatureKeyGoldenValues) {
  EXPECT_EQ(FeatureKey(0, ""), 0xaebe53f85cdc3c4cULL);
  EXPECT_EQ(FeatureKey(0, "68fd1e64"), 0xa5f3f4d23140e926ULL);
  EXPECT_EQ(FeatureKey(1, "68fd1e64"), 0x2caa876a294e116bULL);
  EXPECT_EQ(FeatureKey(12, "a"), 0x50cc4857b83f4086ULL);
  EXPECT_EQ(FeatureKey(25, "e8b83407"), 0x17b075be3b060e76ULL);
}

TEST(HashTest, SlotOfGoldenValues) {
  struct Case {
    uint64_t key;
    uint32_t slot4096, slot1000, slot7;
  } cases[] = {
      {0, 1381, 325, 3},
      {1, 1104, 320, 4},
      {42, 380, 844, 2},
      {~0ULL, 3130, 330, 1},
      {0xa5f3f4d23140e926ULL, 2636, 940, 3},  // FeatureKey(0, "68fd1e64")
      {0x17b075be3b060e76ULL, 855, 575, 1},   // FeatureKey(25, "e8b83407")
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SlotOf(c.key, 4096), c.slot4096) << std::hex << c.key;
    EXPECT_EQ(SlotOf(c.key, 1000), c.slot1000) << std::hex << c.key;
    EXPECT_EQ(SlotOf(c.key, 7), c.slot7) << std::hex << c.key;
  }
}

TEST(HashTest, RouterSlotEqualsSlotOfForEveryCount) {
  // The router's fast path (a mask for power-of-two counts) is the same
  // function as SlotOf.
  std::mt19937_64 rng(5);
  for (uint32_t slots : {1u, 7u, 1000u, 1024u, 4096u, 4097u}) {
    Router r(1, slots);
    for (int i = 0; i < 20000; ++i) {
      const uint64_t k = rng();
      ASSERT_EQ(r.SlotOfKey(k), SlotOf(k, slots)) << slots << " slots, key " << k;
    }
  }
}

TEST(RandomTest, RowInitDependsOnlyOnKeyAndSeed) {
  float a[17], b[17], c[17], d[17];
  InitRowNormal(42, 1, 0.01f, a, 17);
  InitRowNormal(42, 1, 0.01f, b, 17);
  InitRowNormal(42, 2, 0.01f, c, 17);
  InitRowNormal(43, 1, 0.01f, d, 17);
  double sq = 0;
  for (int i = 0; i < 17; ++i) {
    EXPECT_EQ(a[i], b[i]);
    EXPECT_NE(a[i], c[i]) << i;
    EXPECT_NE(a[i], d[i]) << i;
    sq += a[i] * a[i];
  }
  EXPECT_GT(sq / 17, 0.01 * 0.01 / 16);
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

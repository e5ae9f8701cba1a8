#include "ps/admission_filter.h"

#include <gtest/gtest.h>

#include <map>

#include "common/hash.h"

namespace deepfm::ps {
namespace {

// Under a budget the counter forgets the keys not sighted since its last
// shed (a clock's second chance), returns their memory, and reports the
// survivors' counts unchanged.
TEST(AdmissionFilterTest, AShedForgetsOnlyKeysNotSightedSinceTheLastOne) {
  AdmissionFilter f(FilterKind::kCounter, 0, 0);
  EXPECT_EQ(f.Sight(1), 1u);
  EXPECT_EQ(f.Sight(2), 1u);
  EXPECT_EQ(f.ShedUnsighted(), 0u) << "both were sighted since the filter began";
  EXPECT_EQ(f.Sight(1), 2u);
  EXPECT_EQ(f.ShedUnsighted(), 1u);  // key 2 goes, key 1 stays
  std::map<uint64_t, uint32_t> pending;
  f.ForEachPending([&](uint64_t k, uint32_t c) { pending[k] = c; });
  EXPECT_EQ(pending, (std::map<uint64_t, uint32_t>{{1, 2}}));
  EXPECT_EQ(f.Sight(2), 1u) << "a forgotten key counts from zero";
  EXPECT_EQ(f.Sight(1), 3u);
  // A long tail seen once: shedding it gives the memory back.
  for (uint64_t k = 100; k < 100100; ++k) f.Sight(k);
  const size_t full = f.MemoryBytes();
  EXPECT_EQ(f.ShedUnsighted(), 0u);
  EXPECT_EQ(f.ShedUnsighted(), 100002u);
  EXPECT_LT(f.MemoryBytes() * 100, full);
  // The Bloom filter's size is fixed: nothing to shed.
  AdmissionFilter b(FilterKind::kBloom, 1024, 3);
  b.Sight(5);
  EXPECT_EQ(b.ShedUnsighted(), 0u);
  EXPECT_EQ(b.Sight(5), 2u);
}

TEST(AdmissionFilterTest, TheCounterCountsEachKeyExactlyUntilItIsAdmitted) {
  AdmissionFilter f(FilterKind::kCounter, 0, 0);
  EXPECT_EQ(f.Sight(7), 1u);
  EXPECT_EQ(f.Sight(8), 1u);
  EXPECT_EQ(f.Sight(7), 2u);
  EXPECT_EQ(f.Sight(7), 3u);
  f.Admitted(7);
  // Counting starts again (the key was evicted and comes back).
  EXPECT_EQ(f.Sight(7), 1u);
  EXPECT_EQ(f.Sight(8), 2u);
  f.SetCount(9, 4);
  EXPECT_EQ(f.Sight(9), 5u);
  int pending = 0;
  f.ForEachPending([&](uint64_t, uint32_t) { ++pending; });
  EXPECT_EQ(pending, 3);
}

TEST(AdmissionFilterTest, TheBloomFilterNeverUndercountsAndSaturates) {
  // Few counters for many keys: collisions happen, counts may only grow.
  AdmissionFilter f(FilterKind::kBloom, 64, 3);
  std::vector<uint32_t> truth(200, 0);
  for (int round = 0; round < 3; ++round) {
    for (uint64_t k = 0; k < truth.size(); k += 1 + round) {
      ++truth[k];
      EXPECT_GE(f.Sight(Mix64(k)), truth[k]) << "key " << k;
    }
  }
  // With room to spare, k = 3 hashes give each key its exact count.
  AdmissionFilter roomy(FilterKind::kBloom, 1 << 16, 3);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(roomy.Sight(42), static_cast<uint32_t>(i));
  EXPECT_EQ(roomy.Sight(43), 1u);
  for (int i = 0; i < 70000; ++i) roomy.Sight(44);
  EXPECT_EQ(roomy.Sight(44), 65535u);
  EXPECT_EQ(roomy.MemoryBytes(), (1u << 16) * sizeof(uint16_t));
}

}  // namespace
}  // namespace deepfm::ps

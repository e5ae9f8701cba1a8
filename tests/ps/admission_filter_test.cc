#include "ps/admission_filter.h"

#include <gtest/gtest.h>

#include "common/hash.h"

namespace deepfm::ps {
namespace {

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

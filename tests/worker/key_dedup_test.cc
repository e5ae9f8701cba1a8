// KeyDedup, the trainer's per-batch de-duplication, against a plain
// std::unordered_map reference: unique keys in first-seen order and an
// inverse that maps every position back to its key.
#include "worker/key_dedup.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>
#include <vector>

namespace deepfm {
namespace {

void Reference(const std::vector<uint64_t>& keys, std::vector<uint64_t>* uniq,
               std::vector<int32_t>* inverse) {
  std::unordered_map<uint64_t, int32_t> index;
  uniq->clear();
  inverse->clear();
  for (uint64_t k : keys) {
    auto [it, fresh] = index.emplace(k, static_cast<int32_t>(uniq->size()));
    if (fresh) uniq->push_back(k);
    inverse->push_back(it->second);
  }
}

void ExpectMatchesReference(KeyDedup* dedup, const std::vector<uint64_t>& keys) {
  std::vector<uint64_t> uniq, want_uniq;
  std::vector<int32_t> inverse, want_inverse;
  dedup->Run(keys.data(), keys.size(), &uniq, &inverse);
  Reference(keys, &want_uniq, &want_inverse);
  ASSERT_EQ(uniq, want_uniq);
  ASSERT_EQ(inverse, want_inverse);
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(uniq[inverse[i]], keys[i]) << i;
}

TEST(KeyDedupTest, MatchesAReferenceOnSkewedBatches) {
  std::mt19937_64 rng(9);
  KeyDedup dedup;
  // Heavy repetition (a few hot keys), no repetition, and keys that collide
  // in the low bits (multiples of a large power of two).
  for (int round = 0; round < 20; ++round) {
    std::vector<uint64_t> keys(26 * 512);
    for (auto& k : keys) {
      switch (round % 3) {
        case 0:
          k = rng() % 50;
          break;
        case 1:
          k = rng();
          break;
        default:
          k = (rng() % 1000) << 40;
          break;
      }
    }
    SCOPED_TRACE(round);
    ExpectMatchesReference(&dedup, keys);
  }
}

TEST(KeyDedupTest, ReusedAcrossBatchesOfChangingSizeAndKeyZero) {
  KeyDedup dedup;
  ExpectMatchesReference(&dedup, {0, 0, 7, 0, 7, 3});
  ExpectMatchesReference(&dedup, {});
  // Larger than any batch before: the table grows.
  std::vector<uint64_t> big;
  for (uint64_t i = 0; i < 100000; ++i) big.push_back(i % 40000);
  ExpectMatchesReference(&dedup, big);
  // A key seen in an earlier batch is not remembered.
  ExpectMatchesReference(&dedup, {7, 5});
}

}  // namespace
}  // namespace deepfm

// Key hashing: the fixed, documented functions that turn (field, token) into a
// 64-bit feature key and spread keys over routing slots. Changing any of these
// changes every key and invalidates every checkpoint: treat them as a format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace deepfm {

// SplitMix64 finalizer (Steele, Lea, Flood 2014): a bijection on uint64 with
// full avalanche. Used to mix keys before slot routing and to seed row init.
inline constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// FNV-1a 64 over the bytes of `s`, starting from `seed`.
inline uint64_t Fnv1a64(std::string_view s, uint64_t seed = 0xcbf29ce484222325ULL) {
  uint64_t h = seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;  // kFnv64Prime
  }
  return h;
}

// The feature key of categorical field `field` (0-based, C1 is 0) holding
// `token`: Mix64(FNV-1a64(token) starting from an offset basis perturbed by the
// field) so the same token in two fields gives unrelated keys. An empty token
// is hashed like any other token.
// FeatureKey's FNV offset basis for `field`, for callers that hash a token's
// bytes as they scan them: FeatureKey(field, t) ==
// Mix64(Fnv1a64(t, FeatureKeyBasis(field))).
inline constexpr uint64_t FeatureKeyBasis(uint32_t field) {
  return 0xcbf29ce484222325ULL ^ Mix64(0x9e3779b97f4a7c15ULL * (field + 1));
}
inline constexpr uint64_t kFnv64Prime = 0x100000001b3ULL;

inline uint64_t FeatureKey(uint32_t field, std::string_view token) {
  return Mix64(Fnv1a64(token, FeatureKeyBasis(field)));
}

// A hash bucket's key (TensorFlow's categorical_column_with_hash_bucket): the
// token's FeatureKey mod `buckets`, spread over the key space again (the
// shards route by key bits) and kept apart per field, so a field has at most
// `buckets` rows. buckets 0: the key itself.
inline uint64_t BucketKey(uint32_t field, uint64_t key, uint64_t buckets) {
  if (buckets == 0) return key;
  // Offset from the basis by bucket + 1 after one more mix: no bucket's key
  // is a token's FeatureKey (the empty token's is Mix64(basis)).
  return Mix64(Mix64(FeatureKeyBasis(field)) + key % buckets + 1);
}

}  // namespace deepfm

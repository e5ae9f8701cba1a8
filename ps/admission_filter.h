// One stripe's part of a table's admission filter: how often each key without
// a row has been pushed. The counter filter keeps an exact count per key
// until the key is admitted; the counting Bloom filter keeps a fixed array of
// saturating 16-bit counters (its share of the table's BloomSizing counters)
// and reads a key's count as the smallest of its k counters, which can only
// over-count (a false positive admits a key early).
//
// Not thread-safe: the stripe's lock guards it.
#pragma once

#include <cstdint>
#include <vector>

#include "ps/ev_policy.h"
#include "ps/key_index.h"

namespace deepfm::ps {

class AdmissionFilter {
 public:
  AdmissionFilter() = default;
  // counters and hashes are used by the Bloom filter only.
  AdmissionFilter(FilterKind kind, uint64_t counters, uint32_t hashes);

  FilterKind kind() const { return kind_; }
  // Counts one sighting of `key` and returns its count after it.
  uint32_t Sight(uint64_t key);
  // The key got its row: the counter filter stops counting it. (A Bloom
  // filter cannot remove one key's share of its counters.)
  void Admitted(uint64_t key);
  size_t MemoryBytes() const;
  // Counter filter, under a memory budget: forgets every key not sighted
  // since the previous shed (a second chance, as a clock does), and gives
  // their memory back. Returns the keys forgotten; a forgotten key counts
  // from zero when it comes back. The Bloom filter's size is fixed: 0.
  uint64_t ShedUnsighted();
  // Keys the counter filter counts now.
  size_t pending() const { return pending_.size(); }
  // Bytes the next new key adds (the counter filter's index doubling), or 0.
  size_t GrowthBytes() const { return kind_ == FilterKind::kCounter ? pending_.GrowthBytes() : 0; }

  // ---- state, for checkpoints
  // Counter filter: every key still counted.
  template <typename Fn>  // Fn(uint64_t key, uint32_t count)
  void ForEachPending(Fn&& fn) const {
    pending_.ForEach([&](uint64_t key, uint32_t v) { fn(key, v & kCountMask); });
  }
  // Counter filter: sets a key's count (restore).
  void SetCount(uint64_t key, uint32_t count);
  // Bloom filter: the counters; a restore may add saved counters into them.
  std::vector<uint16_t>& bloom() { return bloom_; }
  const std::vector<uint16_t>& bloom() const { return bloom_; }
  uint32_t hashes() const { return hashes_; }
  void Clear();

 private:
  // A counted key's value: its count, and whether it was sighted since the
  // last shed. Counts saturate below the mask, so no value is KeyIndex's
  // empty marker.
  static constexpr uint32_t kSighted = 0x80000000u;
  static constexpr uint32_t kCountMask = 0x7fffffffu;
  static constexpr uint32_t kMaxCount = kCountMask - 1;

  FilterKind kind_ = FilterKind::kNone;
  // Grows at once: a push checks each doubling of the counts against the
  // budget and sheds counts first (see EmbeddingTable::Push).
  KeyIndex pending_{KeyIndex::Growth::kAtOnce};
  std::vector<uint16_t> bloom_;
  uint32_t hashes_ = 0;
};

}  // namespace deepfm::ps

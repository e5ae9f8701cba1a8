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

  // ---- state, for checkpoints
  // Counter filter: every key still counted.
  template <typename Fn>  // Fn(uint64_t key, uint32_t count)
  void ForEachPending(Fn&& fn) const {
    pending_.ForEach(fn);
  }
  // Counter filter: sets a key's count (restore).
  void SetCount(uint64_t key, uint32_t count);
  // Bloom filter: the counters; a restore may add saved counters into them.
  std::vector<uint16_t>& bloom() { return bloom_; }
  const std::vector<uint16_t>& bloom() const { return bloom_; }
  uint32_t hashes() const { return hashes_; }
  void Clear();

 private:
  FilterKind kind_ = FilterKind::kNone;
  KeyIndex pending_;
  std::vector<uint16_t> bloom_;
  uint32_t hashes_ = 0;
};

}  // namespace deepfm::ps

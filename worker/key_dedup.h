// De-duplicates a batch's keys: uniq[U] in first-seen order and inverse[n]
// with keys[i] == uniq[inverse[i]]. Reuses its buffers across batches, so a
// steady-state batch allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace deepfm {

class KeyDedup {
 public:
  void Run(const uint64_t* keys, size_t n, std::vector<uint64_t>* uniq,
           std::vector<int32_t>* inverse);

 private:
  // Open addressing with a generation stamp per slot, so clearing between
  // batches is O(1) instead of O(capacity).
  std::vector<uint64_t> slot_key_;
  std::vector<int32_t> slot_index_;
  std::vector<uint32_t> slot_gen_;
  uint32_t gen_ = 0;
};

}  // namespace deepfm

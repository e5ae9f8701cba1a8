#include "worker/key_dedup.h"

#include <algorithm>

#include "common/hash.h"

namespace deepfm {

void KeyDedup::Run(const uint64_t* keys, size_t n, std::vector<uint64_t>* uniq,
                   std::vector<int32_t>* inverse) {
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  if (slot_key_.size() < cap || ++gen_ == 0) {
    cap = std::max(cap, slot_key_.size());
    slot_key_.assign(cap, 0);
    slot_index_.assign(cap, 0);
    slot_gen_.assign(cap, 0);
    gen_ = 1;
  }
  // Only this call's share of the slots: a small table's keys stay in a few
  // cache lines even after a large one grew the arrays (slots beyond carry
  // older stamps and are never read).
  const size_t mask = cap - 1;
  uniq->clear();
  inverse->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t k = keys[i];
    size_t s = Mix64(k) & mask;
    while (true) {
      if (slot_gen_[s] != gen_) {
        slot_gen_[s] = gen_;
        slot_key_[s] = k;
        slot_index_[s] = static_cast<int32_t>(uniq->size());
        uniq->push_back(k);
        break;
      }
      if (slot_key_[s] == k) break;
      s = (s + 1) & mask;
    }
    (*inverse)[i] = slot_index_[s];
  }
}

}  // namespace deepfm

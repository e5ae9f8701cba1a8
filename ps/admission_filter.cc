#include "ps/admission_filter.h"

#include <algorithm>

#include "common/hash.h"

namespace deepfm::ps {

AdmissionFilter::AdmissionFilter(FilterKind kind, uint64_t counters, uint32_t hashes)
    : kind_(kind), hashes_(hashes) {
  if (kind_ == FilterKind::kBloom) bloom_.assign(std::max<uint64_t>(counters, 1), 0);
}

uint32_t AdmissionFilter::Sight(uint64_t key) {
  if (kind_ == FilterKind::kCounter) {
    uint32_t count = 1;
    if (!pending_.Update(key, [&](uint32_t* c) {
          count = std::min(kMaxCount, (*c & kCountMask) + 1);
          *c = count | kSighted;
        })) {
      pending_.Insert(key, 1 | kSighted);
    }
    return count;
  }
  if (kind_ != FilterKind::kBloom) return UINT32_MAX;
  // Double hashing (Kirsch and Mitzenmacher): k positions from two hashes,
  // independent of the ones that pick the stripe and the key index slot.
  const uint64_t h1 = Mix64(key ^ 0x6a09e667f3bcc909ULL);
  const uint64_t h2 = Mix64(key ^ 0xbb67ae8584caa73bULL) | 1;
  const uint64_t m = bloom_.size();
  uint32_t least = UINT32_MAX;
  for (uint32_t i = 0; i < hashes_; ++i) {
    uint16_t& c = bloom_[(h1 + i * h2) % m];
    if (c != UINT16_MAX) ++c;
    least = std::min<uint32_t>(least, c);
  }
  return least;
}

void AdmissionFilter::Admitted(uint64_t key) {
  if (kind_ == FilterKind::kCounter) pending_.Erase(key);
}

void AdmissionFilter::SetCount(uint64_t key, uint32_t count) {
  if (kind_ != FilterKind::kCounter || count == 0) return;
  // A restored key starts as sighted: it gets its second chance.
  const uint32_t v = std::min(count, kMaxCount) | kSighted;
  if (!pending_.Update(key, [&](uint32_t* c) { *c = v; })) pending_.Insert(key, v);
}

size_t AdmissionFilter::MemoryBytes() const {
  if (kind_ == FilterKind::kCounter) return pending_.MemoryBytes();
  return bloom_.capacity() * sizeof(uint16_t);
}

uint64_t AdmissionFilter::ShedUnsighted() {
  if (kind_ != FilterKind::kCounter) return 0;
  const size_t before = pending_.size();
  pending_.KeepIf([](uint64_t, uint32_t* v) {
    if (!(*v & kSighted)) return false;
    *v &= kCountMask;
    return true;
  });
  return before - pending_.size();
}

void AdmissionFilter::Clear() {
  pending_.Clear();
  std::fill(bloom_.begin(), bloom_.end(), 0);
}

}  // namespace deepfm::ps

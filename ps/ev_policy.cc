#include "ps/ev_policy.h"

#include <cmath>

namespace deepfm::ps {

FilterKind ParseFilterKind(const std::string& s, bool* ok) {
  *ok = true;
  if (s == "counter") return FilterKind::kCounter;
  if (s == "bloom") return FilterKind::kBloom;
  *ok = false;
  return FilterKind::kNone;
}

const char* FilterKindName(FilterKind k) {
  switch (k) {
    case FilterKind::kCounter:
      return "counter";
    case FilterKind::kBloom:
      return "bloom";
    case FilterKind::kNone:
      break;
  }
  return "none";
}

BloomSize BloomSizing(double p, uint64_t n) {
  BloomSize b;
  const double ln2 = std::log(2.0);
  b.hashes = static_cast<uint32_t>(std::ceil(std::fabs(std::log2(p))));
  b.counters = static_cast<uint64_t>(
      std::ceil(std::fabs(std::log(p)) * static_cast<double>(n) / (ln2 * ln2)));
  return b;
}

Status ValidateEvPolicy(const EvPolicy& p) {
  if (p.filter_freq > 65535) {
    return InvalidArgument("--ev_filter_freq " + std::to_string(p.filter_freq) +
                           " must be <= 65535");
  }
  if (p.filter == FilterKind::kBloom) {
    if (!(p.bloom_fp_rate > 0 && p.bloom_fp_rate < 1)) {
      return InvalidArgument("--ev_bloom_fp_rate must lie in (0, 1)");
    }
    if (p.bloom_max_elements == 0) return InvalidArgument("--ev_bloom_max_elements must be >= 1");
    if (BloomSizing(p.bloom_fp_rate, p.bloom_max_elements).counters > (uint64_t{1} << 34)) {
      return InvalidArgument(
          "--ev_bloom_max_elements and --ev_bloom_fp_rate ask for more than 2^34 "
          "Bloom counters (32 GiB) per table");
    }
  }
  if (p.steps_to_live < 0) return InvalidArgument("--ev_steps_to_live must be >= 0");
  if (p.steps_to_live > 0x7fffffff) return InvalidArgument("--ev_steps_to_live must be < 2^31");
  if (!(p.l2_threshold >= 0) || !std::isfinite(p.l2_threshold)) {
    return InvalidArgument("--ev_l2_threshold must be a finite number >= 0");
  }
  if (p.evict_interval_steps < 1) return InvalidArgument("--ev_evict_interval_steps must be >= 1");
  return Status::Ok();
}

}  // namespace deepfm::ps

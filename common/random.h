// Deterministic per-key random numbers: a row's initial values are a function
// of (key, seed) only, so they do not depend on shard count or arrival order.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hash.h"

namespace deepfm {

// SplitMix64 stream.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return Mix64(state_);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return (Next() >> 11) * (1.0 / 9007199254740992.0); }
  // Standard normal by Box-Muller; one value per call keeps the stream simple.
  double Normal() {
    double u1 = Uniform();
    double u2 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

// Fills out[0..n) with N(0, stddev^2) drawn from a stream seeded by (key, seed).
inline void InitRowNormal(uint64_t key, uint64_t seed, float stddev, float* out, int n) {
  SplitMix64 rng(Mix64(key) ^ Mix64(seed + 0x632be59bd9b4e019ULL));
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(rng.Normal() * stddev);
}

}  // namespace deepfm

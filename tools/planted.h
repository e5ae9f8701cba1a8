// Pieces both planted-data generators (tools/datagen.h) use: O(1) draws
// from a discrete distribution, and the oracle's AUC and log loss.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/hash.h"
#include "common/random.h"

namespace deepfm::planted {

// Vose's alias method: O(1) draws from a fixed discrete distribution, which
// keeps Zipf sampling over 200k values cheap.
class AliasTable {
 public:
  explicit AliasTable(const std::vector<double>& weights) {
    const size_t n = weights.size();
    prob_.resize(n);
    alias_.resize(n);
    double total = 0;
    for (double w : weights) total += w;
    std::vector<double> scaled(n);
    std::vector<uint32_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      scaled[i] = weights[i] * n / total;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const uint32_t s = small.back();
      small.pop_back();
      const uint32_t l = large.back();
      prob_[s] = static_cast<float>(scaled[s]);
      alias_[s] = l;
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Leftovers are 1 up to rounding.
    for (uint32_t i : small) prob_[i] = 1.0f, alias_[i] = i;
    for (uint32_t i : large) prob_[i] = 1.0f, alias_[i] = i;
  }

  uint32_t Sample(uint64_t r) const {
    // High bits pick the bucket, low 24 bits flip the coin.
    const auto bucket =
        static_cast<uint32_t>((static_cast<unsigned __int128>(r) * prob_.size()) >> 64);
    const float coin = static_cast<float>(r & 0xffffff) * (1.0f / 16777216.0f);
    return coin < prob_[bucket] ? bucket : alias_[bucket];
  }

 private:
  std::vector<float> prob_;
  std::vector<uint32_t> alias_;
};

inline double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Exact AUC with tied scores at their average rank. Kept here rather than
// taken from the worker library so the generators build without the trainer.
double Auc(const std::vector<double>& score, const std::vector<uint8_t>& label);
double LogLoss(const std::vector<double>& prob, const std::vector<uint8_t>& label);

// Bias that makes the mean click probability over `rows` rows drawn from
// `world` (world.Draw(&rng, &row), world.Logit(row)) equal `ctr`; the mean
// is monotone in the bias, so bisection is exact enough.
template <typename Row, typename World>
double CalibrateBias(const World& world, uint64_t seed, double ctr, int64_t rows) {
  SplitMix64 rng(Mix64(seed ^ 0xca11b4a7e5ull));
  std::vector<double> logits(rows);
  Row row;
  for (double& z : logits) {
    world.Draw(&rng, &row);
    z = world.Logit(row);
  }
  double lo = -30, hi = 30;
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    double mean = 0;
    for (double z : logits) mean += Sigmoid(z + mid);
    mean /= logits.size();
    (mean < ctr ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace deepfm::planted

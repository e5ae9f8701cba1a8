// One mini-batch as the reader hands it to the trainer: labels, transformed
// dense features and hashed categorical keys, all row-major so a batch can be
// handed to the model and the de-duplicator without copying.
#pragma once

#include <cstdint>
#include <vector>

namespace deepfm {

// Criteo / DeepRec model-zoo schema: label, I1..I13, C1..C26.
inline constexpr int kNumDense = 13;
inline constexpr int kNumFields = 26;
inline constexpr int kNumColumns = 1 + kNumDense + kNumFields;

struct Batch {
  int size = 0;
  // [size]: 0 or 1.
  std::vector<float> labels;
  // [size x kNumDense] row-major, already transformed: x = log(1 + max(v, 0)),
  // an empty value is 0.
  std::vector<float> dense;
  // [size x kNumFields] row-major: keys[b * kNumFields + f] = FeatureKey(f, token).
  std::vector<uint64_t> keys;

  // Sets size and makes room for `n` rows. Never shrinks capacity, so a batch
  // reused across steps stops allocating after the first one.
  void Resize(int n) {
    size = n;
    labels.resize(n);
    dense.resize(static_cast<size_t>(n) * kNumDense);
    keys.resize(static_cast<size_t>(n) * kNumFields);
  }
};

}  // namespace deepfm

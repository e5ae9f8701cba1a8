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

// Where a reader stands: the next line it would read. Lines are numbered
// within an epoch across the files, which is how readers share the data.
struct ReadPosition {
  int32_t epoch = 0;
  uint32_t file_index = 0;
  uint64_t offset = 0;       // byte offset of the next line in that file
  int64_t line_number = 0;   // lines of that file before `offset` (for messages)
  int64_t line_index = 0;    // lines of the epoch before it
  int64_t epoch_rows = 0;    // this reader's good rows of the epoch before it
};

struct Batch {
  int size = 0;
  // The reader's position just after this batch's last row.
  ReadPosition end;
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

// One mini-batch as the reader hands it to the trainer: labels, the numeric
// inputs, and per embedding table the keys of every member column, laid out
// so the de-duplicator and the pooling read them without copying. The shape
// (numeric inputs, tables, members) comes from the feature spec
// (spec/feature_spec.h); Batch itself knows no column counts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/read_position.h"  // ReadPosition: the next line a reader would read

namespace deepfm {

class FeatureSpec;

// One table's keys for a batch, row by row and, within a row, member column
// by member column (the table's members in file order).
//   fixed: every (row, member) has exactly one key, keys[row * members + m];
//          no splits.
//   CSR:   the keys of (row, member) are keys[splits[i] .. splits[i + 1]),
//          i = row * members + m; splits has rows * members + 1 entries.
struct TableKeys {
  int members = 1;
  bool fixed = true;
  std::vector<uint64_t> keys;
  std::vector<int32_t> splits;

  // The keys of (row, m): [*begin, *end).
  void Range(int row, int m, int32_t* begin, int32_t* end) const {
    const int i = row * members + m;
    if (fixed) {
      *begin = i;
      *end = i + 1;
    } else {
      *begin = splits[i];
      *end = splits[i + 1];
    }
  }
};

struct Batch {
  int size = 0;
  // The reader's position just after this batch's last row.
  ReadPosition end;
  // [size]: 0 or 1.
  std::vector<float> labels;
  // [size x num_numeric] row-major, already transformed and defaulted.
  int num_numeric = 0;
  std::vector<float> dense;
  // Per table of the spec, in spec order.
  std::vector<TableKeys> tables;
  // List tokens beyond their column's max_length, dropped, in this batch.
  int64_t truncated_tokens = 0;

  // Lays the batch out for `spec` (empty).
  void Shape(const FeatureSpec& spec);

  // Sets size to n rows, keeping the first min(n, size) rows' contents. Never
  // shrinks capacity, so a batch reused across steps stops allocating after
  // the first one. A CSR table's keys beyond the kept rows are dropped.
  void Resize(int n) {
    const int kept = std::min(n, size);
    size = n;
    labels.resize(n);
    dense.resize(static_cast<size_t>(n) * num_numeric);
    for (TableKeys& t : tables) {
      if (t.fixed) {
        t.keys.resize(static_cast<size_t>(n) * t.members);
      } else {
        const size_t before = t.splits.empty() ? 0 : static_cast<size_t>(kept) * t.members;
        const int32_t kept_keys = t.splits.empty() ? 0 : t.splits[before];
        t.splits.resize(static_cast<size_t>(n) * t.members + 1);
        t.splits[0] = 0;
        // Rows not yet parsed read as empty until they are.
        std::fill(t.splits.begin() + before, t.splits.end(), kept_keys);
        t.keys.resize(kept_keys);
      }
    }
  }
};

}  // namespace deepfm

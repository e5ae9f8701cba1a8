// Everything a shard holds, copied out by table and variable name, so tests
// can compare a shard with its restore (or a set of shards with another)
// whole: every row's values, slots, frequency and last step; every table's
// and dense variable's optimizer state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ps/shard.h"

namespace deepfm::testing_util {

using ps::DenseVariable;
using ps::EmbeddingTable;
using ps::RowMeta;
using ps::Shard;
using ps::VariableOptState;

struct RowCopy {
  std::vector<float> values, slots;
  uint32_t freq, last_step;
  bool operator==(const RowCopy& o) const {
    return values == o.values && slots == o.slots && freq == o.freq && last_step == o.last_step;
  }
};

struct TableCopy {
  std::map<uint64_t, RowCopy> rows;
  VariableOptState state;
};

struct DenseCopy {
  std::vector<int64_t> shape;
  std::vector<float> values, slots;
  VariableOptState state;
};

// Everything one shard holds, by table and variable name.
struct ShardCopy {
  std::map<std::string, TableCopy> tables;
  std::map<std::string, DenseCopy> dense;
  int64_t global_step = 0;
};

inline ShardCopy Copy(Shard& sh) {
  ShardCopy c;
  c.global_step = sh.global_step();
  for (EmbeddingTable* t : sh.tables()) {
    TableCopy& tc = c.tables[t->options().name];
    tc.state = t->opt_state();
    t->ForEachRow([&](uint64_t k, const float* v, const float* s, RowMeta m) {
      tc.rows[k] = RowCopy{{v, v + t->dim()}, {s, s + t->slot_floats()}, m.frequency, m.last_step};
    });
  }
  sh.dense().ForEach([&](uint32_t, const DenseVariable& v) {
    c.dense[v.name] = DenseCopy{v.shape, v.values, v.slots, v.opt_state};
  });
  return c;
}


}  // namespace deepfm::testing_util

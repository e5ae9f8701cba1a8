// Dense variables partitioned over the shards (DESIGN.md §5), as
// TensorFlow's partitioned variables: a variable larger than the job's
// minimum slice is cut along its first dimension into contiguous row ranges,
// one per shard, so each of M shards holds and moves about 1/M of every
// large tensor and the dense traffic spreads with the shard count. Smaller
// variables stay whole on the shard their name routes to.
//
// The plan is a pure function of (name, shape, shard count, minimum slice),
// computed alike by trainers and shards; a shard refuses a slice that is not
// its own. Checkpoints record each slice's range, so they restore onto any
// shard count and any minimum slice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/routing.h"

namespace deepfm {

// 64 KiB: below it a slice's request overhead outweighs spreading its bytes.
inline constexpr int64_t kDefaultDenseSliceBytes = 64 << 10;

struct DenseSlice {
  uint32_t shard = 0;
  int64_t offset = 0;  // first element, in the flattened (row-major) variable
  int64_t size = 0;    // elements
};

// The slices of a float32 variable of `shape` (every dimension > 0; rank 0 is
// a scalar), in order of offset; they cover it exactly once and lie on
// distinct shards. The variable has k = min(M, rows, bytes / min_slice_bytes)
// slices (at least 1) of near-equal row counts; slice i lies on shard
// (ShardOfName(name) + i) mod M, so different variables start on different
// shards. min_slice_bytes <= 0 keeps every variable whole.
std::vector<DenseSlice> PartitionDense(const Router& router, const std::string& name,
                                       const std::vector<int64_t>& shape, int64_t min_slice_bytes);

// The slice of the plan on `shard`, if it holds one.
std::optional<DenseSlice> SliceOnShard(const std::vector<DenseSlice>& plan, uint32_t shard);

}  // namespace deepfm

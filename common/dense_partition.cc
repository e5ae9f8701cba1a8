#include "common/dense_partition.h"

#include <algorithm>

namespace deepfm {

std::vector<DenseSlice> PartitionDense(const Router& router, const std::string& name,
                                       const std::vector<int64_t>& shape, int64_t min_slice_bytes) {
  const int64_t rows = shape.empty() ? 1 : shape[0];
  int64_t row_elems = 1;
  for (size_t i = 1; i < shape.size(); ++i) row_elems *= shape[i];
  const int64_t bytes = rows * row_elems * static_cast<int64_t>(sizeof(float));
  int64_t k = 1;
  if (min_slice_bytes > 0) {
    k = std::min<int64_t>({router.num_shards(), rows, bytes / min_slice_bytes});
    k = std::max<int64_t>(k, 1);
  }
  const uint32_t first = router.ShardOfName(name);
  std::vector<DenseSlice> plan(k);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t begin = rows * i / k, end = rows * (i + 1) / k;
    plan[i].shard = static_cast<uint32_t>((first + i) % router.num_shards());
    plan[i].offset = begin * row_elems;
    plan[i].size = (end - begin) * row_elems;
  }
  return plan;
}

std::optional<DenseSlice> SliceOnShard(const std::vector<DenseSlice>& plan, uint32_t shard) {
  for (const DenseSlice& s : plan) {
    if (s.shard == shard) return s;
  }
  return std::nullopt;
}

}  // namespace deepfm

// Embedding pooling, forward and backward (DESIGN.md §2): from each table's
// de-duplicated rows to one vector per (row, feature), and back from the
// pooled vectors' gradients to each unique row's.
//
// A feature is one member column of one table (spec/feature_spec.h). Its
// pooled vector for row b combines the rows of its keys in that row:
//   sum   = Σ rows,   mean = sum / n,   sqrtn = sum / √n,
// and is zero when the row has none (an empty single value, every token
// outside a vocabulary). A row's vector is [w (first-order weight), e[0..D)]:
// the first-order weight pools with the embedding. One key copies its row
// unchanged (bit for bit whatever the combiner), so a single-valued feature
// is exactly a gather.
//
// Backward: each key of (b, f) gets d_pooled[b, f] times the combiner's
// factor (1, 1/n or 1/√n), added into its unique row, visiting (b, f) in
// row-major order, so duplicate keys sum in a fixed order.
#pragma once

#include <cstdint>
#include <vector>

#include "spec/feature_spec.h"
#include "worker/batch.h"
#include "worker/deepfm_model.h"

namespace deepfm {

namespace dnn {
struct Kernels;
}  // namespace dnn

// One table's rows for a batch: its unique keys' rows and, for every key of
// the batch's TableKeys, the index of its unique row.
template <typename T>
struct TableRows {
  const T* rows = nullptr;        // [U x width]
  const int32_t* inverse = nullptr;  // one per key of the table's TableKeys
};

template <typename T>
class PoolingT {
 public:
  // `width`: floats per row (dim + 1). The float pooling runs on `kernels`
  // (worker/dnn_kernels.h; null: the process's active path); double stays on
  // plain loops (gradient checks).
  PoolingT(const FeatureSpec& spec, int width, const dnn::Kernels* kernels = nullptr);

  int num_features() const { return static_cast<int>(features_.size()); }
  int width() const { return width_; }

  // Every (b, f)'s pooled [w, e] into `out` (the model's BeginBatch, or a
  // packed buffer), B = batch.size; with out.row_keys, each row's count of
  // keys over the features the spec's model.linear_columns names (default
  // every one; an in-vocabulary word, a list's "" token and a kept single
  // value count one each).
  void Forward(const Batch& batch, const std::vector<TableRows<T>>& tables,
               const PooledLayout<T>& out) const;
  // The same into pooled[B x F x width], [w, e] per (b, f).
  void Forward(const Batch& batch, const std::vector<TableRows<T>>& tables, T* pooled) const;

  // row_grads[t] [U_t x width] are zeroed (U_t = num_uniq[t]), then get the
  // gradient of every key of the batch from the pooled features' gradients
  // `d` (the model's Gradients(), or a packed buffer).
  void Backward(const Batch& batch, const std::vector<TableRows<T>>& tables,
                const PooledLayout<const T>& d, const std::vector<T*>& row_grads,
                const std::vector<size_t>& num_uniq) const;
  void Backward(const Batch& batch, const std::vector<TableRows<T>>& tables, const T* d_pooled,
                const std::vector<T*>& row_grads, const std::vector<size_t>& num_uniq) const;

 private:
  struct Feature {
    int table;
    int member;
    spec::Combiner combiner;
    bool linear;  // counted in row_keys
  };
  T Factor(spec::Combiner c, int32_t n) const;
  // A packed [B x F x width] buffer's layout.
  template <typename U>
  PooledLayout<U> Packed(U* pooled) const;

  std::vector<Feature> features_;
  int width_;
  const dnn::Kernels* kernels_ = nullptr;  // float only
};

using Pooling = PoolingT<float>;

extern template class PoolingT<float>;
extern template class PoolingT<double>;

}  // namespace deepfm

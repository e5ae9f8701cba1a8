#include "worker/pooling.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "worker/dnn_kernels.h"

namespace deepfm {

template <typename T>
PoolingT<T>::PoolingT(const FeatureSpec& spec, int width, const dnn::Kernels* kernels)
    : width_(width) {
  if constexpr (std::is_same_v<T, float>) kernels_ = kernels ? kernels : &dnn::ActiveKernels();
  for (const FeatureSpec::FeatureInfo& f : spec.features()) {
    const FeatureSpec::ColumnInfo& c = spec.columns()[f.column];
    features_.push_back(
        {f.table, f.member, c.kind == FeatureSpec::Kind::kList ? c.combiner : spec::SUM, f.linear});
  }
}

template <typename T>
T PoolingT<T>::Factor(spec::Combiner c, int32_t n) const {
  switch (c) {
    case spec::MEAN:
      return T(1) / static_cast<T>(n);
    case spec::SQRTN:
      return T(1) / std::sqrt(static_cast<T>(n));
    default:
      return T(1);
  }
}

template <typename T>
template <typename U>
PooledLayout<U> PoolingT<T>::Packed(U* pooled) const {
  PooledLayout<U> l;
  l.w = pooled;
  l.w_row = static_cast<size_t>(num_features()) * width_;
  l.w_feature = width_;
  l.e = pooled + 1;
  l.e_row = l.w_row;
  l.e_feature = width_;
  return l;
}

template <typename T>
void PoolingT<T>::Forward(const Batch& batch, const std::vector<TableRows<T>>& tables,
                          T* pooled) const {
  Forward(batch, tables, Packed(pooled));
}

template <typename T>
void PoolingT<T>::Forward(const Batch& batch, const std::vector<TableRows<T>>& tables,
                          const PooledLayout<T>& out) const {
  const int F = num_features();
  const int W = width_;
  const int D = W - 1;
  for (int b = 0; b < batch.size; ++b) {
    if (out.row_keys != nullptr) {
      int64_t keys = 0;
      for (int f = 0; f < F; ++f) {
        if (!features_[f].linear) continue;
        const TableKeys& tk = batch.tables[features_[f].table];
        int32_t begin, end;
        tk.Range(b, features_[f].member, &begin, &end);
        keys += end - begin;
      }
      out.row_keys[b] = static_cast<T>(keys);
    }
    for (int f = 0; f < F; ++f) {
      const Feature& feat = features_[f];
      const TableKeys& tk = batch.tables[feat.table];
      const TableRows<T>& tr = tables[feat.table];
      T* w = out.w + b * out.w_row + f * out.w_feature;
      T* e = out.e + b * out.e_row + f * out.e_feature;
      if (tk.fixed) {
        // One key: a gather (Criteo's every feature), no call, no combiner.
        const T* row = tr.rows + static_cast<size_t>(tr.inverse[b * tk.members + feat.member]) * W;
        *w = row[0];
        std::copy(row + 1, row + W, e);
        continue;
      }
      int32_t begin, end;
      tk.Range(b, feat.member, &begin, &end);
      const int32_t n = end - begin;
      if (n == 0) {
        *w = T(0);
        std::fill(e, e + D, T(0));
        continue;
      }
      const T factor = Factor(feat.combiner, n);
      if constexpr (std::is_same_v<T, float>) {
        kernels_->pool_rows(tr.rows, tr.inverse, begin, end, W, factor, w, e);
        continue;
      }
      const T* first = tr.rows + static_cast<size_t>(tr.inverse[begin]) * W;
      *w = first[0];
      std::copy(first + 1, first + W, e);
      if (n == 1) continue;
      for (int32_t i = begin + 1; i < end; ++i) {
        const T* row = tr.rows + static_cast<size_t>(tr.inverse[i]) * W;
        *w += row[0];
        for (int j = 0; j < D; ++j) e[j] += row[1 + j];
      }
      if (factor != T(1)) {
        *w *= factor;
        for (int j = 0; j < D; ++j) e[j] *= factor;
      }
    }
  }
}

template <typename T>
void PoolingT<T>::Backward(const Batch& batch, const std::vector<TableRows<T>>& tables,
                           const T* d_pooled, const std::vector<T*>& row_grads,
                           const std::vector<size_t>& num_uniq) const {
  Backward(batch, tables, Packed(d_pooled), row_grads, num_uniq);
}

template <typename T>
void PoolingT<T>::Backward(const Batch& batch, const std::vector<TableRows<T>>& tables,
                           const PooledLayout<const T>& d, const std::vector<T*>& row_grads,
                           const std::vector<size_t>& num_uniq) const {
  const int F = num_features();
  const int W = width_;
  const int D = W - 1;
  for (size_t t = 0; t < row_grads.size(); ++t) {
    std::fill(row_grads[t], row_grads[t] + num_uniq[t] * W, T(0));
  }
  T scaled[4096];
  for (int b = 0; b < batch.size; ++b) {
    for (int f = 0; f < F; ++f) {
      const Feature& feat = features_[f];
      const TableKeys& tk = batch.tables[feat.table];
      const int32_t* inverse = tables[feat.table].inverse;
      T* grads = row_grads[feat.table];
      T dw = d.w[b * d.w_row + f * d.w_feature];
      const T* de = d.e + b * d.e_row + f * d.e_feature;
      if (tk.fixed) {
        T* out = grads + static_cast<size_t>(inverse[b * tk.members + feat.member]) * W;
        out[0] += dw;
        for (int j = 0; j < D; ++j) out[1 + j] += de[j];
        continue;
      }
      int32_t begin, end;
      tk.Range(b, feat.member, &begin, &end);
      const int32_t n = end - begin;
      if (n == 0) continue;
      const T factor = Factor(feat.combiner, n);
      if constexpr (std::is_same_v<T, float>) {
        kernels_->unpool_rows(dw, de, factor, inverse, begin, end, W, grads);
        continue;
      }
      if (n > 1 && factor != T(1)) {
        dw *= factor;
        for (int j = 0; j < D; ++j) scaled[j] = de[j] * factor;
        de = scaled;
      }
      for (int32_t i = begin; i < end; ++i) {
        T* out = grads + static_cast<size_t>(inverse[i]) * W;
        out[0] += dw;
        for (int j = 0; j < D; ++j) out[1 + j] += de[j];
      }
    }
  }
}

template class PoolingT<float>;
template class PoolingT<double>;

}  // namespace deepfm

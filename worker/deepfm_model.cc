#include "worker/deepfm_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/hash.h"
#include "common/random.h"
#include "glog/logging.h"

namespace deepfm {
namespace {

// Positions in the dense tensor list (see DeepFMDenseSpecs).
constexpr int kWDense = 0;
constexpr int kLinearBias = 1;
inline int KernelIndex(int layer) { return 2 + 2 * layer; }
inline int BiasIndex(int layer) { return 3 + 2 * layer; }

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <typename T>
inline T Sigmoid(T z) {
  // Never exponentiates a large positive number.
  if (z >= 0) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

}  // namespace

int64_t DenseTensorSpec::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<DenseTensorSpec> DeepFMDenseSpecs(const DeepFMConfig& config) {
  std::vector<DenseTensorSpec> specs;
  specs.push_back({"linear/w_dense", {config.num_dense}});
  specs.push_back({"linear/bias", {1}});
  int64_t in = config.dnn_input_width();
  for (size_t i = 0; i < config.hidden_units.size(); ++i) {
    const int64_t out = config.hidden_units[i];
    const std::string prefix = "dnn/layer" + std::to_string(i);
    specs.push_back({prefix + "/kernel", {in, out}});
    specs.push_back({prefix + "/bias", {out}});
    in = out;
  }
  specs.push_back({"dnn/out/kernel", {in, 1}});
  specs.push_back({"dnn/out/bias", {1}});
  return specs;
}

template <typename T>
void InitDenseTensor(const DenseTensorSpec& spec, uint64_t seed, T* out) {
  const int64_t n = spec.size();
  if (!EndsWith(spec.name, "/kernel") || spec.shape.size() != 2) {
    std::fill(out, out + n, T(0));
    return;
  }
  const double limit = std::sqrt(6.0 / static_cast<double>(spec.shape[0] + spec.shape[1]));
  SplitMix64 rng(Mix64(seed) ^ Fnv1a64(spec.name));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>((2.0 * rng.Uniform() - 1.0) * limit);
}

template void InitDenseTensor<float>(const DenseTensorSpec&, uint64_t, float*);
template void InitDenseTensor<double>(const DenseTensorSpec&, uint64_t, double*);

template <typename T>
DeepFMModelT<T>::DeepFMModelT(DeepFMConfig config)
    : config_(std::move(config)), num_layers_(static_cast<int>(config_.hidden_units.size())) {
  CHECK_GT(config_.num_fields, 0);
  CHECK_GE(config_.num_dense, 0);
  CHECK_GT(config_.embedding_dim, 0);
  for (int h : config_.hidden_units) CHECK_GT(h, 0) << "hidden layer widths must be positive";
  for (DenseTensorSpec& spec : DeepFMDenseSpecs(config_)) {
    const int64_t n = spec.size();
    dense_.push_back({std::move(spec.name), std::move(spec.shape), std::vector<T>(n, T(0)),
                      std::vector<T>(n, T(0))});
  }
  hidden_.resize(num_layers_);
  d_hidden_.resize(num_layers_);
}

template <typename T>
DenseTensorT<T>* DeepFMModelT<T>::FindDense(const std::string& name) {
  for (auto& t : dense_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

template <typename T>
void DeepFMModelT<T>::InitDense(uint64_t seed) {
  for (auto& t : dense_) InitDenseTensor<T>({t.name, t.shape}, seed, t.values.data());
}

template <typename T>
void DeepFMModelT<T>::GatherLinearFm(int B, const T* dense_x, const T* uniq_rows,
                                     const int32_t* inverse) {
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const int W = config_.row_width();
  const int ND = config_.num_dense;
  input_.resize(B, config_.dnn_input_width());
  fm_sum_.resize(B, D);
  linear_fm_.resize(B);
  const T bias = dense_[kLinearBias].values[0];
  const T* w_dense = dense_[kWDense].values.data();
  for (int b = 0; b < B; ++b) {
    T* in = input_.row(b).data();
    const int32_t* inv = inverse + static_cast<size_t>(b) * F;
    T linear = bias;
    for (int f = 0; f < F; ++f) {
      const T* row = uniq_rows + static_cast<size_t>(inv[f]) * W;
      linear += row[0];
      std::copy(row + 1, row + 1 + D, in + f * D);
    }
    const T* x = dense_x + static_cast<size_t>(b) * ND;
    for (int d = 0; d < ND; ++d) linear += w_dense[d] * x[d];
    std::copy(x, x + ND, in + F * D);
    // FM in O(F*D): the sum of pairwise dot products is half of (square of
    // the sum minus sum of squares).
    const Eigen::Map<const Matrix> e(in, F, D);
    fm_sum_.row(b) = e.colwise().sum();
    linear_fm_(b) = linear + T(0.5) * (fm_sum_.row(b).squaredNorm() - e.squaredNorm());
  }
}

template <typename T>
void DeepFMModelT<T>::DnnForward(int B) {
  using RowVectorMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
  const Matrix* prev = &input_;
  for (int i = 0; i < num_layers_; ++i) {
    const DenseTensorT<T>& kernel = dense_[KernelIndex(i)];
    const Eigen::Map<const Matrix> w(kernel.values.data(), kernel.shape[0], kernel.shape[1]);
    const RowVectorMap bias(dense_[BiasIndex(i)].values.data(), kernel.shape[1]);
    Matrix& h = hidden_[i];
    h.resize(B, kernel.shape[1]);
    h.noalias() = *prev * w;
    // Bias and ReLU in one pass over the activations.
    h = (h.rowwise() + bias).cwiseMax(T(0));
    prev = &h;
  }
  const DenseTensorT<T>& out_kernel = dense_[KernelIndex(num_layers_)];
  const Eigen::Map<const ColVector> w_out(out_kernel.values.data(), out_kernel.shape[0]);
  logits_.resize(B);
  logits_.noalias() = *prev * w_out;
  logits_.array() += dense_[BiasIndex(num_layers_)].values[0] + linear_fm_.array();
}

template <typename T>
void DeepFMModelT<T>::Forward(int B, const T* dense_x, const T* uniq_rows, int U,
                              const int32_t* inverse) {
  CHECK_GT(B, 0);
#ifndef NDEBUG
  for (int64_t i = 0; i < static_cast<int64_t>(B) * config_.num_fields; ++i) {
    DCHECK(inverse[i] >= 0 && inverse[i] < U)
        << "inverse[" << i << "]=" << inverse[i] << " outside [0, " << U << ")";
  }
#endif
  GatherLinearFm(B, dense_x, uniq_rows, inverse);
  DnnForward(B);
}

template <typename T>
T DeepFMModelT<T>::MeanLoss(int B, const T* labels) const {
  // BCE from the logit: log(1 + e^z) - y z, written so exp never overflows.
  T sum = 0;
  for (int b = 0; b < B; ++b) {
    const T z = logits_(b);
    sum += std::max(z, T(0)) - z * labels[b] + std::log1p(std::exp(-std::abs(z)));
  }
  return sum / B;
}

template <typename T>
void DeepFMModelT<T>::DnnBackward(int B) {
  const Matrix& last = num_layers_ > 0 ? hidden_[num_layers_ - 1] : input_;
  DenseTensorT<T>& out_kernel = dense_[KernelIndex(num_layers_)];
  const Eigen::Map<const ColVector> w_out(out_kernel.values.data(), out_kernel.shape[0]);
  Eigen::Map<ColVector>(out_kernel.grads.data(), out_kernel.shape[0]).noalias() =
      last.transpose() * dlogit_;
  dense_[BiasIndex(num_layers_)].grads[0] = dlogit_.sum();

  const int embed_width = config_.num_fields * config_.embedding_dim;
  if (num_layers_ == 0) {
    d_embedding_.resize(B, embed_width);
    d_embedding_.noalias() = dlogit_ * w_out.head(embed_width).transpose();
    return;
  }

  Matrix& top = d_hidden_[num_layers_ - 1];
  top.resize(B, last.cols());
  top.noalias() = dlogit_ * w_out.transpose();
  // ReLU backward as a mask: a unit that output 0 passes no gradient.
  top.array() = (last.array() > T(0)).select(top.array(), T(0));

  for (int i = num_layers_ - 1; i >= 0; --i) {
    const Matrix& prev = i > 0 ? hidden_[i - 1] : input_;
    const Matrix& dz = d_hidden_[i];
    DenseTensorT<T>& kernel = dense_[KernelIndex(i)];
    const int64_t in = kernel.shape[0];
    const int64_t out = kernel.shape[1];
    Eigen::Map<Matrix>(kernel.grads.data(), in, out).noalias() = prev.transpose() * dz;
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(dense_[BiasIndex(i)].grads.data(), out)
        .noalias() = dz.colwise().sum();
    if (i > 0) {
      const Eigen::Map<const Matrix> w(kernel.values.data(), in, out);
      Matrix& dprev = d_hidden_[i - 1];
      dprev.resize(B, in);
      dprev.noalias() = dz * w.transpose();
      dprev.array() = (prev.array() > T(0)).select(dprev.array(), T(0));
    } else {
      // Only the embedding columns need an input gradient: the dense
      // features are data. They are the kernel's first rows.
      const Eigen::Map<const Matrix> w_embed(kernel.values.data(), embed_width, out);
      d_embedding_.resize(B, embed_width);
      d_embedding_.noalias() = dz * w_embed.transpose();
    }
  }
}

template <typename T>
T DeepFMModelT<T>::ForwardBackward(int B, const T* dense_x, const T* uniq_rows, int U,
                                   const int32_t* inverse, const T* labels, T* uniq_grads) {
  Forward(B, dense_x, uniq_rows, U, inverse);
  const T loss = MeanLoss(B, labels);

  const T inv_b = T(1) / B;
  dlogit_.resize(B);
  for (int b = 0; b < B; ++b) dlogit_(b) = (Sigmoid(logits_(b)) - labels[b]) * inv_b;

  const int ND = config_.num_dense;
  Eigen::Map<ColVector>(dense_[kWDense].grads.data(), ND).noalias() =
      Eigen::Map<const Matrix>(dense_x, B, ND).transpose() * dlogit_;
  dense_[kLinearBias].grads[0] = dlogit_.sum();

  DnnBackward(B);

  // Per (b, f): first-order weight gets dlogit; the embedding gets the DNN's
  // input gradient plus the FM term dlogit * (sum_f' e_f' - e_f). Duplicate
  // keys add up in their unique row.
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const int W = config_.row_width();
  std::fill(uniq_grads, uniq_grads + static_cast<size_t>(U) * W, T(0));
  for (int b = 0; b < B; ++b) {
    const T g = dlogit_(b);
    const int32_t* inv = inverse + static_cast<size_t>(b) * F;
    const T* s = fm_sum_.row(b).data();
    const T* e_row = input_.row(b).data();
    const T* de_row = d_embedding_.row(b).data();
    for (int f = 0; f < F; ++f) {
      T* out = uniq_grads + static_cast<size_t>(inv[f]) * W;
      const T* e = e_row + f * D;
      const T* de = de_row + f * D;
      out[0] += g;
      for (int j = 0; j < D; ++j) out[1 + j] += de[j] + g * (s[j] - e[j]);
    }
  }
  return loss;
}

template <typename T>
T DeepFMModelT<T>::ForwardLoss(int B, const T* dense_x, const T* uniq_rows, int U,
                               const int32_t* inverse, const T* labels) {
  Forward(B, dense_x, uniq_rows, U, inverse);
  return MeanLoss(B, labels);
}

template <typename T>
void DeepFMModelT<T>::Predict(int B, const T* dense_x, const T* uniq_rows, int U,
                              const int32_t* inverse, T* probs) {
  Forward(B, dense_x, uniq_rows, U, inverse);
  for (int b = 0; b < B; ++b) probs[b] = Sigmoid(logits_(b));
}

template class DeepFMModelT<float>;
template class DeepFMModelT<double>;

}  // namespace deepfm

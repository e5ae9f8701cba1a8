#include "worker/deepfm_model.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#include "common/hash.h"
#include "common/random.h"
#include "obs/timeline.h"
#include "glog/logging.h"
#include "worker/dnn_kernels.h"

namespace deepfm {
namespace {

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

// The DNN's dense linear algebra on row-major blocks (leading dimensions as
// in dnn::Kernels). The float model goes through the run-time-dispatched
// kernels; the double one (gradient checks) through Eigen and plain loops in
// this TU, at whatever ISA the build has.
template <typename T>
struct DnnOps {
  const dnn::Kernels* kernels;  // unused for double
  int threads;
  bool bf16;                    // float only: store activations at bf16 precision
  dnn::GemmFn native_bf16 = nullptr;  // float, bf16 only: the GEMM on bf16 dot products
  bool fused = true;            // float only: false runs bias, ReLU and rounding apart
  bool rows_only = false;       // float only: GEMMs split by rows alone (ParallelGemm)

  template <bool kTransA, bool kTransB>
  static void EigenGemm(const T* a, int lda, const T* b, int ldb, T* c, int ldc, int m, int n,
                        int k, T beta) {
    using Stride = Eigen::OuterStride<>;
    // A transposed row-major block is the same memory read column-major.
    using MapA = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic,
                                                kTransA ? Eigen::ColMajor : Eigen::RowMajor>,
                            Eigen::Unaligned, Stride>;
    using MapB = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic,
                                                kTransB ? Eigen::ColMajor : Eigen::RowMajor>,
                            Eigen::Unaligned, Stride>;
    using MapC = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                            Eigen::Unaligned, Stride>;
    const MapA op_a(a, m, k, Stride(lda));
    const MapB op_b(b, k, n, Stride(ldb));
    MapC out(c, m, n, Stride(ldc));
    if (beta == T(0)) {
      out.noalias() = op_a * op_b;
    } else {
      out *= beta;
      out.noalias() += op_a * op_b;
    }
  }

  // C[m x n] = op(A) op(B) + beta C.
  void Gemm(const T* a, int lda, const T* b, int ldb, T* c, int ldc, int m, int n, int k,
            bool trans_a, bool trans_b, T beta) const {
    obs::ScopedSpan span("gemm");
    if constexpr (std::is_same_v<T, float>) {
      if (native_bf16 != nullptr) {
        dnn::ParallelGemm(native_bf16, threads, a, lda, b, ldb, c, ldc, m, n, k, trans_a, trans_b,
                          beta, rows_only);
        return;
      }
      dnn::ParallelGemm(*kernels, threads, a, lda, b, ldb, c, ldc, m, n, k, trans_a, trans_b, beta,
                        rows_only);
    } else if (trans_a) {
      trans_b ? EigenGemm<true, true>(a, lda, b, ldb, c, ldc, m, n, k, beta)
              : EigenGemm<true, false>(a, lda, b, ldb, c, ldc, m, n, k, beta);
    } else {
      trans_b ? EigenGemm<false, true>(a, lda, b, ldb, c, ldc, m, n, k, beta)
              : EigenGemm<false, false>(a, lda, b, ldb, c, ldc, m, n, k, beta);
    }
  }

  // c[m x n] = max(c + bias (per column), 0), contiguous rows.
  void BiasRelu(T* c, const T* bias, int m, int n) const {
    if constexpr (std::is_same_v<T, float>) {
      if (!fused) {
        const size_t size = static_cast<size_t>(m) * n;
        for (int i = 0; i < m; ++i) {
          T* row = c + static_cast<size_t>(i) * n;
          for (int j = 0; j < n; ++j) row[j] += bias[j];
        }
        for (size_t i = 0; i < size; ++i) c[i] = c[i] > T(0) ? c[i] : T(0);
        RoundIfBf16(c, static_cast<int64_t>(size));
        return;
      }
      (bf16 ? kernels->bias_relu_bf16 : kernels->bias_relu)(c, n, bias, m, n);
    } else {
      for (int i = 0; i < m; ++i) {
        T* row = c + static_cast<size_t>(i) * n;
        for (int j = 0; j < n; ++j) row[j] = std::max(row[j] + bias[j], T(0));
      }
    }
  }

  // Rounds x[0..n) to bf16 precision in place when training in bf16.
  void RoundIfBf16(T* x, int64_t n) const {
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) kernels->round_bf16(x, static_cast<long>(n));
    }
  }

  // ReLU backward as a mask (a unit that output 0 passes no gradient), with
  // the masked gradient's column sums (the bias gradient) in `col_sums`.
  void ReluBackward(T* d, const T* act, int m, int n, T* col_sums) const {
    if constexpr (std::is_same_v<T, float>) {
      if (!fused) {
        const size_t size = static_cast<size_t>(m) * n;
        for (size_t i = 0; i < size; ++i) d[i] = act[i] > T(0) ? d[i] : T(0);
        std::fill(col_sums, col_sums + n, T(0));
        for (int i = 0; i < m; ++i) {
          const T* row = d + static_cast<size_t>(i) * n;
          for (int j = 0; j < n; ++j) col_sums[j] += row[j];
        }
        RoundIfBf16(d, static_cast<int64_t>(size));
        return;
      }
      (bf16 ? kernels->relu_backward_bf16 : kernels->relu_backward)(d, act, m, n, col_sums);
    } else {
      std::fill(col_sums, col_sums + n, T(0));
      for (int i = 0; i < m; ++i) {
        T* row = d + static_cast<size_t>(i) * n;
        const T* act_row = act + static_cast<size_t>(i) * n;
        for (int j = 0; j < n; ++j) {
          if (!(act_row[j] > T(0))) row[j] = T(0);
          col_sums[j] += row[j];
        }
      }
    }
  }
};

}  // namespace


int64_t DenseTensorSpec::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// One MLP's tensors: per layer kernel and bias, then with batch norm its
// gamma, beta and moving statistics. Returns the output width.
int64_t AddStack(const std::string& prefix, const std::vector<int>& units, int64_t in, bool bn,
                 float momentum, std::vector<DenseTensorSpec>* specs) {
  for (size_t i = 0; i < units.size(); ++i) {
    const int64_t out = units[i];
    const std::string layer = prefix + "/layer" + std::to_string(i);
    specs->push_back({layer + "/kernel", {in, out}});
    specs->push_back({layer + "/bias", {out}});
    if (bn) {
      specs->push_back({layer + "/bn/gamma", {out}});
      specs->push_back({layer + "/bn/beta", {out}});
      specs->push_back({layer + "/bn/moving_mean", {out}, true, momentum});
      specs->push_back({layer + "/bn/moving_variance", {out}, true, momentum});
    }
    in = out;
  }
  return in;
}

}  // namespace

std::vector<DenseTensorSpec> DeepFMDenseSpecs(const DeepFMConfig& config) {
  std::vector<DenseTensorSpec> specs;
  if (config.linear == DeepFMConfig::Linear::kLearned) {
    specs.push_back({"linear/w_dense", {config.num_dense}});
    specs.push_back({"linear/bias", {1}});
  }
  const float momentum = config.batch_norm_momentum;
  int64_t in = AddStack("dnn", config.hidden_units, config.dnn_input_width(), config.batch_norm,
                        momentum, &specs);
  std::string out = "dnn/out";
  if (config.has_final()) {
    in = AddStack("final_dnn", config.final_hidden_units, in + 1 + config.fm_width(),
                  config.batch_norm, momentum, &specs);
    out = "final_dnn/out";
  }
  specs.push_back({out + "/kernel", {in, 1}});
  specs.push_back({out + "/bias", {1}});
  return specs;
}

template <typename T>
void InitDenseTensor(const DenseTensorSpec& spec, uint64_t seed, T* out) {
  const int64_t n = spec.size();
  if (EndsWith(spec.name, "/gamma") || EndsWith(spec.name, "/moving_variance")) {
    std::fill(out, out + n, T(1));
    return;
  }
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
DeepFMModelT<T>::DeepFMModelT(DeepFMConfig config) : config_(std::move(config)) {
  CHECK_GT(config_.num_fields, 0);
  CHECK_GE(config_.num_dense, 0);
  CHECK_GT(config_.embedding_dim, 0);
  for (int h : config_.hidden_units) CHECK_GT(h, 0) << "hidden layer widths must be positive";
  for (int h : config_.final_hidden_units) CHECK_GT(h, 0) << "final layer widths must be positive";
  CHECK(config_.fm == DeepFMConfig::Fm::kScalar || config_.has_final())
      << "a vector FM needs a final DNN";
  CHECK_GE(config_.dnn_threads, 1) << "dnn_threads counts the calling thread";
  if constexpr (std::is_same_v<T, float>) {
    if (config_.dnn_isa.empty()) {
      kernels_ = &dnn::ActiveKernels();
    } else {
      dnn::Isa isa;
      CHECK(dnn::ParseIsa(config_.dnn_isa, &isa))
          << "DeepFMConfig::dnn_isa '" << config_.dnn_isa
          << "' is not one of generic, avx2, avx512 (or empty for the process default)";
      kernels_ = dnn::KernelsFor(isa);
      CHECK(kernels_ != nullptr) << "DeepFMConfig::dnn_isa " << config_.dnn_isa
                                 << ": this CPU cannot run that path; leave it empty";
    }
    if (config_.bf16 && kernels_->isa == dnn::Isa::kAvx512) native_bf16_gemm_ = dnn::NativeBf16Gemm();
  }
  for (DenseTensorSpec& spec : DeepFMDenseSpecs(config_)) {
    const int64_t n = spec.size();
    dense_.push_back({std::move(spec.name), std::move(spec.shape), std::vector<T>(n, T(0)),
                      std::vector<T>(n, T(0))});
  }
  auto index = [&](const std::string& name) {
    for (size_t i = 0; i < dense_.size(); ++i) {
      if (dense_[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  auto layers = [&](const std::string& prefix, size_t n, Stack* stack) {
    stack->layers.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string l = prefix + "/layer" + std::to_string(i);
      LayerIndex& li = stack->layers[i];
      li.kernel = index(l + "/kernel");
      li.bias = index(l + "/bias");
      li.gamma = index(l + "/bn/gamma");
      li.beta = index(l + "/bn/beta");
      li.moving_mean = index(l + "/bn/moving_mean");
      li.moving_variance = index(l + "/bn/moving_variance");
    }
    stack->act.resize(n);
    stack->bn_out.resize(n);
    stack->d.resize(n);
    stack->mean.resize(n);
    stack->inv_std.resize(n);
  };
  w_dense_ = index("linear/w_dense");
  linear_bias_ = index("linear/bias");
  layers("dnn", config_.hidden_units.size(), &dnn_);
  layers("final_dnn", config_.final_hidden_units.size(), &final_);
  const std::string out = config_.has_final() ? "final_dnn/out" : "dnn/out";
  out_kernel_ = index(out + "/kernel");
  out_bias_ = index(out + "/bias");
  zero_ = ColVector::Zero(1);
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
PooledLayout<T> DeepFMModelT<T>::BeginBatch(int B) {
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  input_.resize(B, config_.dnn_input_width());
  first_order_.resize(B, F);
  PooledLayout<T> out;
  out.e = input_.data();
  out.e_row = static_cast<size_t>(input_.cols());
  out.e_feature = static_cast<size_t>(D);
  out.w = first_order_.data();
  out.w_row = static_cast<size_t>(F);
  out.w_feature = 1;
  if (config_.linear == DeepFMConfig::Linear::kWeightless) {
    row_keys_.resize(B);
    out.row_keys = row_keys_.data();
  }
  return out;
}

template <typename T>
void DeepFMModelT<T>::LinearFm(int B, const T* dense_x) {
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const int ND = config_.num_dense;
  const bool learned = config_.linear == DeepFMConfig::Linear::kLearned;
  const bool final = config_.has_final();
  fm_sum_.resize(B, D);
  if (final) {
    const int hw = config_.hidden_units.empty() ? config_.dnn_input_width()
                                                : config_.hidden_units.back();
    final_input_.resize(B, hw + 1 + config_.fm_width());
  } else {
    linear_fm_.resize(B);
  }
  const T bias = learned ? dense_[linear_bias_].values[0] : T(0);
  const T* w_dense = learned ? dense_[w_dense_].values.data() : nullptr;
  for (int b = 0; b < B; ++b) {
    T* in = input_.row(b).data();
    const T* x = dense_x + static_cast<size_t>(b) * ND;
    T linear;
    if (learned) {
      const T* w = first_order_.row(b).data();
      linear = bias;
      for (int f = 0; f < F; ++f) linear += w[f];
      for (int d = 0; d < ND; ++d) linear += w_dense[d] * x[d];
    } else {
      linear = row_keys_(b);
      for (int d = 0; d < ND; ++d) linear += x[d];
    }
    std::copy(x, x + ND, in + F * D);
    // FM in O(F*D): the sum of pairwise dot products is half of (square of
    // the sum minus sum of squares).
    const Eigen::Map<const Matrix> e(in, F, D);
    fm_sum_.row(b) = e.colwise().sum();
    if (!final) {
      linear_fm_(b) = linear + T(0.5) * (fm_sum_.row(b).squaredNorm() - e.squaredNorm());
      continue;
    }
    T* tail = final_input_.row(b).data() + (final_input_.cols() - 1 - config_.fm_width());
    tail[0] = linear;
    if (config_.fm == DeepFMConfig::Fm::kVector) {
      const T* s = fm_sum_.row(b).data();
      for (int j = 0; j < D; ++j) tail[1 + j] = T(0.5) * (s[j] * s[j] - e.col(j).squaredNorm());
    } else {
      tail[1] = T(0.5) * (fm_sum_.row(b).squaredNorm() - e.squaredNorm());
    }
  }
}

template <typename T>
void DeepFMModelT<T>::BatchNormForward(const LayerIndex& li, Stack* stack, int i, int B,
                                       bool training) {
  const Matrix& a = stack->act[i];
  const int n = static_cast<int>(a.cols());
  std::vector<T>& mean = stack->mean[i];
  std::vector<T>& inv = stack->inv_std[i];
  mean.assign(n, T(0));
  inv.assign(n, T(0));
  const T eps = static_cast<T>(config_.batch_norm_epsilon);
  if (training) {
    // Two passes (mean, then the squared deviations): no cancellation.
    for (int b = 0; b < B; ++b) {
      const T* row = a.row(b).data();
      for (int j = 0; j < n; ++j) mean[j] += row[j];
    }
    const T inv_b = T(1) / B;
    for (int j = 0; j < n; ++j) mean[j] *= inv_b;
    for (int b = 0; b < B; ++b) {
      const T* row = a.row(b).data();
      for (int j = 0; j < n; ++j) {
        const T c = row[j] - mean[j];
        inv[j] += c * c;
      }
    }
    T* batch_mean = dense_[li.moving_mean].grads.data();
    T* batch_var = dense_[li.moving_variance].grads.data();
    for (int j = 0; j < n; ++j) {
      const T var = inv[j] * inv_b;  // biased, as tf.nn.moments
      batch_mean[j] = mean[j];
      batch_var[j] = var;
      inv[j] = T(1) / std::sqrt(var + eps);
    }
  } else {
    const T* mm = dense_[li.moving_mean].values.data();
    const T* mv = dense_[li.moving_variance].values.data();
    for (int j = 0; j < n; ++j) {
      mean[j] = mm[j];
      inv[j] = T(1) / std::sqrt(mv[j] + eps);
    }
  }
  const T* gamma = dense_[li.gamma].values.data();
  const T* beta = dense_[li.beta].values.data();
  Matrix& y = stack->bn_out[i];
  y.resize(B, n);
  for (int b = 0; b < B; ++b) {
    const T* row = a.row(b).data();
    T* out = y.row(b).data();
    for (int j = 0; j < n; ++j) out[j] = gamma[j] * ((row[j] - mean[j]) * inv[j]) + beta[j];
  }
  const DnnOps<T> ops{kernels_, config_.dnn_threads, config_.bf16};
  ops.RoundIfBf16(y.data(), y.size());
}

template <typename T>
void DeepFMModelT<T>::BatchNormBackward(const LayerIndex& li, Stack* stack, int i, int B) {
  // d holds dLoss/dy; it becomes dLoss/da, with
  //   da = gamma * inv / B * (B dy - sum(dy) - xhat * sum(dy * xhat)).
  Matrix& d = stack->d[i];
  const Matrix& a = stack->act[i];
  const int n = static_cast<int>(a.cols());
  const std::vector<T>& mean = stack->mean[i];
  const std::vector<T>& inv = stack->inv_std[i];
  T* d_gamma = dense_[li.gamma].grads.data();
  T* d_beta = dense_[li.beta].grads.data();
  std::fill(d_gamma, d_gamma + n, T(0));
  std::fill(d_beta, d_beta + n, T(0));
  for (int b = 0; b < B; ++b) {
    const T* dy = d.row(b).data();
    const T* row = a.row(b).data();
    for (int j = 0; j < n; ++j) {
      d_beta[j] += dy[j];
      d_gamma[j] += dy[j] * ((row[j] - mean[j]) * inv[j]);
    }
  }
  const T* gamma = dense_[li.gamma].values.data();
  const T inv_b = T(1) / B;
  for (int b = 0; b < B; ++b) {
    T* dy = d.row(b).data();
    const T* row = a.row(b).data();
    for (int j = 0; j < n; ++j) {
      const T xhat = (row[j] - mean[j]) * inv[j];
      dy[j] = gamma[j] * inv[j] * (dy[j] - inv_b * d_beta[j] - xhat * inv_b * d_gamma[j]);
    }
  }
}

template <typename T>
const typename DeepFMModelT<T>::Matrix& DeepFMModelT<T>::StackForward(Stack* stack, int B,
                                                                      const Matrix& in,
                                                                      bool training) {
  const DnnOps<T> ops{kernels_, config_.dnn_threads, config_.bf16, native_bf16_gemm_,
                      config_.op_fusion, scoring_rows_};
  const Matrix* prev = &in;
  for (size_t i = 0; i < stack->layers.size(); ++i) {
    const LayerIndex& li = stack->layers[i];
    const DenseTensorT<T>& kernel = dense_[li.kernel];
    const int prev_width = static_cast<int>(prev->cols());
    const int out = static_cast<int>(kernel.shape[1]);
    Matrix& h = stack->act[i];
    h.resize(B, out);
    ops.Gemm(prev->data(), prev_width, kernel.values.data(), out, h.data(), out, B, out,
             prev_width, /*trans_a=*/false, /*trans_b=*/false, T(0));
    // Bias and ReLU in one pass over the activations (op_fusion).
    ops.BiasRelu(h.data(), dense_[li.bias].values.data(), B, out);
    if (li.gamma >= 0) BatchNormForward(li, stack, static_cast<int>(i), B, training);
    prev = &stack->Out(static_cast<int>(i));
  }
  return *prev;
}

template <typename T>
void DeepFMModelT<T>::DnnForward(int B, bool training) {
  const DnnOps<T> ops{kernels_, config_.dnn_threads, config_.bf16, native_bf16_gemm_};
  // The DNN input (embeddings and dense features) is stored at bf16
  // precision too; the FM above used the pulled rows, already bf16 on the
  // wire.
  ops.RoundIfBf16(input_.data(), input_.size());
  const Matrix* last = &StackForward(&dnn_, B, input_, training);
  if (config_.has_final()) {
    final_input_.leftCols(last->cols()) = *last;
    ops.RoundIfBf16(final_input_.data(), final_input_.size());
    last = &StackForward(&final_, B, final_input_, training);
  }
  // The output layer is a matrix-vector product: too small to dispatch.
  const DenseTensorT<T>& out_kernel = dense_[out_kernel_];
  const Eigen::Map<const ColVector> w_out(out_kernel.values.data(), out_kernel.shape[0]);
  logits_.resize(B);
  logits_.noalias() = *last * w_out;
  if (config_.has_final()) {
    logits_.array() += dense_[out_bias_].values[0];
  } else {
    logits_.array() += dense_[out_bias_].values[0] + linear_fm_.array();
  }
}

namespace {

// Fills `out` with one row [w, e[0..D)] per (b, f): row_of(b * F + f).
template <typename T, typename RowOf>
void FillFromRows(const PooledLayout<T>& out, int B, int F, int D, RowOf row_of) {
  for (int b = 0; b < B; ++b) {
    for (int f = 0; f < F; ++f) {
      const T* row = row_of(static_cast<int64_t>(b) * F + f);
      out.w[b * out.w_row + f] = row[0];
      std::copy(row + 1, row + 1 + D, out.e + b * out.e_row + f * D);
    }
    if (out.row_keys) out.row_keys[b] = static_cast<T>(F);  // one key per feature
  }
}

}  // namespace

template <typename T>
void DeepFMModelT<T>::GatherRows(int B, const T* uniq_rows, int U, const int32_t* inverse) {
  const int W = config_.row_width();
  FillFromRows(BeginBatch(B), B, config_.num_fields, config_.embedding_dim, [&](int64_t i) {
    DCHECK(inverse[i] >= 0 && inverse[i] < U)
        << "inverse[" << i << "]=" << inverse[i] << " outside [0, " << U << ")";
    return uniq_rows + static_cast<size_t>(inverse[i]) * W;
  });
}

template <typename T>
void DeepFMModelT<T>::CopyPooled(int B, const T* pooled) {
  const int W = config_.row_width();
  FillFromRows(BeginBatch(B), B, config_.num_fields, config_.embedding_dim,
               [&](int64_t i) { return pooled + static_cast<size_t>(i) * W; });
}

template <typename T>
void DeepFMModelT<T>::Forward(int B, const T* dense_x, bool training) {
  CHECK_GT(B, 0);
  CHECK_EQ(input_.rows(), B) << "BeginBatch(B) and the pooled features come first";
  if (config_.bf16) {
    // Weights at bf16 precision (a no-op when they were pulled as bf16).
    const DnnOps<T> ops{kernels_, config_.dnn_threads, true};
    for (auto& t : dense_) ops.RoundIfBf16(t.values.data(), static_cast<int64_t>(t.values.size()));
  }
  LinearFm(B, dense_x);
  DnnForward(B, training);
}

template <typename T>
T DeepFMModelT<T>::MeanLoss(int B, const T* labels) const {
  T sum = 0;
  if (config_.loss == DeepFMConfig::Loss::kMse) {
    for (int b = 0; b < B; ++b) {
      const T r = Sigmoid(logits_(b)) - labels[b];
      sum += r * r;
    }
    return sum / B;
  }
  // BCE from the logit: log(1 + e^z) - y z, written so exp never overflows.
  for (int b = 0; b < B; ++b) {
    const T z = logits_(b);
    sum += std::max(z, T(0)) - z * labels[b] + std::log1p(std::exp(-std::abs(z)));
  }
  return sum / B;
}

template <typename T>
void DeepFMModelT<T>::StackBackward(Stack* stack, int B, const Matrix& in, Matrix* d_in,
                                    int d_in_width) {
  const DnnOps<T> ops{kernels_, config_.dnn_threads, config_.bf16, native_bf16_gemm_,
                      config_.op_fusion};
  // d[i] arrives as the gradient of layer i's output; batch norm's backward
  // and then the ReLU mask (which writes the bias gradient) make it the
  // pre-activation's.
  for (int i = static_cast<int>(stack->layers.size()) - 1; i >= 0; --i) {
    const LayerIndex& li = stack->layers[i];
    Matrix& dz = stack->d[i];
    if (li.gamma >= 0) BatchNormBackward(li, stack, i, B);
    ops.ReluBackward(dz.data(), stack->act[i].data(), B, static_cast<int>(dz.cols()),
                     dense_[li.bias].grads.data());
    const Matrix& prev = i > 0 ? stack->Out(i - 1) : in;
    DenseTensorT<T>& kernel = dense_[li.kernel];
    const int width = static_cast<int>(kernel.shape[0]);
    const int out = static_cast<int>(kernel.shape[1]);
    // dW[in x out] = prev^T dz.
    ops.Gemm(prev.data(), width, dz.data(), out, kernel.grads.data(), out, width, out, B,
             /*trans_a=*/true, /*trans_b=*/false, T(0));
    if (i > 0) {
      // dprev[B x in] = dz W^T.
      Matrix& dprev = stack->d[i - 1];
      dprev.resize(B, width);
      ops.Gemm(dz.data(), out, kernel.values.data(), out, dprev.data(), width, B, width, out,
               /*trans_a=*/false, /*trans_b=*/true, T(0));
    } else if (d_in != nullptr) {
      // Only the input's first d_in_width columns need a gradient (the
      // dense features are data). They are the kernel's first rows.
      d_in->resize(B, d_in_width);
      ops.Gemm(dz.data(), out, kernel.values.data(), out, d_in->data(), d_in_width, B,
               d_in_width, out, /*trans_a=*/false, /*trans_b=*/true, T(0));
    }
  }
}

template <typename T>
void DeepFMModelT<T>::DnnBackward(int B) {
  Stack& top_stack = config_.has_final() ? final_ : dnn_;
  const int top_layers = static_cast<int>(top_stack.layers.size());
  const Matrix& last = top_layers > 0 ? top_stack.Out(top_layers - 1) : input_;
  DenseTensorT<T>& out_kernel = dense_[out_kernel_];
  const Eigen::Map<const ColVector> w_out(out_kernel.values.data(), out_kernel.shape[0]);
  Eigen::Map<ColVector>(out_kernel.grads.data(), out_kernel.shape[0]).noalias() =
      last.transpose() * dlogit_;
  dense_[out_bias_].grads[0] = dlogit_.sum();

  const int embed_width = config_.num_fields * config_.embedding_dim;
  if (top_layers == 0) {
    d_embedding_.resize(B, embed_width);
    d_embedding_.noalias() = dlogit_ * w_out.head(embed_width).transpose();
    return;
  }
  Matrix& top = top_stack.d[top_layers - 1];
  top.resize(B, last.cols());
  top.noalias() = dlogit_ * w_out.transpose();
  if (!config_.has_final()) {
    StackBackward(&dnn_, B, input_, &d_embedding_, embed_width);
    return;
  }
  StackBackward(&final_, B, final_input_, &d_final_input_,
                static_cast<int>(final_input_.cols()));
  const int fmw = config_.fm_width();
  const int hw = static_cast<int>(final_input_.cols()) - 1 - fmw;
  d_linear_ = d_final_input_.col(hw);
  d_fm_ = d_final_input_.rightCols(fmw);
  if (dnn_.layers.empty()) {
    d_embedding_ = d_final_input_.leftCols(embed_width);
    return;
  }
  dnn_.d.back() = d_final_input_.leftCols(hw);
  StackBackward(&dnn_, B, input_, &d_embedding_, embed_width);
}

template <typename T>
T DeepFMModelT<T>::ForwardBackwardFilled(int B, const T* dense_x, const T* labels) {
  {
    obs::ScopedSpan span("forward");
    Forward(B, dense_x, /*training=*/true);
  }
  const T loss = MeanLoss(B, labels);
  obs::ScopedSpan span("backward");

  const T inv_b = T(1) / B;
  dlogit_.resize(B);
  if (config_.loss == DeepFMConfig::Loss::kMse) {
    for (int b = 0; b < B; ++b) {
      const T p = Sigmoid(logits_(b));
      dlogit_(b) = T(2) * (p - labels[b]) * p * (T(1) - p) * inv_b;
    }
  } else {
    for (int b = 0; b < B; ++b) dlogit_(b) = (Sigmoid(logits_(b)) - labels[b]) * inv_b;
  }

  DnnBackward(B);

  // The linear part's gradient: the logit's without a final DNN.
  const ColVector& d_linear = config_.has_final() ? d_linear_ : dlogit_;
  if (config_.linear == DeepFMConfig::Linear::kLearned) {
    const int ND = config_.num_dense;
    Eigen::Map<ColVector>(dense_[w_dense_].grads.data(), ND).noalias() =
        Eigen::Map<const Matrix>(dense_x, B, ND).transpose() * d_linear;
    dense_[linear_bias_].grads[0] = d_linear.sum();
  }

  // Per (b, f): the pooled embedding's gradient is the DNN's input gradient
  // plus the FM term dfm * (sum_f' e_f' - e_f), made in place (dfm per j for
  // a vector FM); the pooled first-order weight's is the linear part's.
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const bool vector_fm = config_.fm == DeepFMConfig::Fm::kVector;
  for (int b = 0; b < B; ++b) {
    const T* s = fm_sum_.row(b).data();
    const T* e_row = input_.row(b).data();
    T* de_row = d_embedding_.row(b).data();
    if (vector_fm) {
      const T* g = d_fm_.row(b).data();
      for (int f = 0; f < F; ++f) {
        const T* e = e_row + f * D;
        T* de = de_row + f * D;
        for (int j = 0; j < D; ++j) de[j] = de[j] + g[j] * (s[j] - e[j]);
      }
      continue;
    }
    const T g = config_.has_final() ? d_fm_(b, 0) : dlogit_(b);
    for (int f = 0; f < F; ++f) {
      const T* e = e_row + f * D;
      T* de = de_row + f * D;
      for (int j = 0; j < D; ++j) de[j] = de[j] + g * (s[j] - e[j]);
    }
  }
  return loss;
}

template <typename T>
PooledLayout<T> DeepFMModelT<T>::Gradients() {
  PooledLayout<T> g;
  g.e = d_embedding_.data();
  g.e_row = static_cast<size_t>(d_embedding_.cols());
  g.e_feature = static_cast<size_t>(config_.embedding_dim);
  if (config_.linear == DeepFMConfig::Linear::kWeightless) {
    g.w = zero_.data();  // no first-order weights: every feature's is 0
    g.w_row = 0;
  } else {
    // Every feature of row b: the linear part's gradient at b.
    g.w = config_.has_final() ? d_linear_.data() : dlogit_.data();
    g.w_row = 1;
  }
  g.w_feature = 0;
  return g;
}

template <typename T>
T DeepFMModelT<T>::ForwardBackwardPooled(int B, const T* dense_x, const T* pooled, const T* labels,
                                         T* d_pooled) {
  CopyPooled(B, pooled);
  const T loss = ForwardBackwardFilled(B, dense_x, labels);
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const int W = config_.row_width();
  const PooledLayout<T> g = Gradients();
  for (int b = 0; b < B; ++b) {
    for (int f = 0; f < F; ++f) {
      T* out = d_pooled + (static_cast<size_t>(b) * F + f) * W;
      out[0] = g.w[b * g.w_row + f * g.w_feature];
      std::copy(g.e + b * g.e_row + f * D, g.e + b * g.e_row + (f + 1) * D, out + 1);
    }
  }
  return loss;
}

template <typename T>
T DeepFMModelT<T>::ForwardBackward(int B, const T* dense_x, const T* uniq_rows, int U,
                                   const int32_t* inverse, const T* labels, T* uniq_grads) {
  GatherRows(B, uniq_rows, U, inverse);
  const T loss = ForwardBackwardFilled(B, dense_x, labels);
  // Duplicate keys add up in their unique row, (b, f) in row-major order.
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const int W = config_.row_width();
  const PooledLayout<T> g = Gradients();
  std::fill(uniq_grads, uniq_grads + static_cast<size_t>(U) * W, T(0));
  for (int b = 0; b < B; ++b) {
    const T gw = g.w[b * g.w_row];
    const T* de_row = d_embedding_.row(b).data();
    for (int f = 0; f < F; ++f) {
      T* out = uniq_grads + static_cast<size_t>(inverse[static_cast<size_t>(b) * F + f]) * W;
      const T* de = de_row + f * D;
      out[0] += gw;
      for (int j = 0; j < D; ++j) out[1 + j] += de[j];
    }
  }
  return loss;
}

template <typename T>
T DeepFMModelT<T>::ForwardLossFilled(int B, const T* dense_x, const T* labels) {
  Forward(B, dense_x, /*training=*/true);
  return MeanLoss(B, labels);
}

template <typename T>
T DeepFMModelT<T>::ForwardLoss(int B, const T* dense_x, const T* uniq_rows, int U,
                               const int32_t* inverse, const T* labels) {
  GatherRows(B, uniq_rows, U, inverse);
  return ForwardLossFilled(B, dense_x, labels);
}

template <typename T>
T DeepFMModelT<T>::ForwardLossPooled(int B, const T* dense_x, const T* pooled, const T* labels) {
  CopyPooled(B, pooled);
  return ForwardLossFilled(B, dense_x, labels);
}

template <typename T>
void DeepFMModelT<T>::Predict(int B, const T* dense_x, const T* uniq_rows, int U,
                              const int32_t* inverse, T* probs) {
  GatherRows(B, uniq_rows, U, inverse);
  PredictFilled(B, dense_x, probs);
}

template <typename T>
void DeepFMModelT<T>::PredictPooled(int B, const T* dense_x, const T* pooled, T* probs) {
  CopyPooled(B, pooled);
  PredictFilled(B, dense_x, probs);
}

template <typename T>
void DeepFMModelT<T>::PredictFilled(int B, const T* dense_x, T* probs) {
  Forward(B, dense_x, /*training=*/false);
  for (int b = 0; b < B; ++b) probs[b] = Sigmoid(logits_(b));
}

template <typename T>
void DeepFMModelT<T>::PredictRowsFilled(int B, const T* dense_x, T* probs) {
  const int P = PredictRows(B);
  CHECK_EQ(input_.rows(), P) << "PredictRowsFilled needs BeginBatch(PredictRows(B))";
  const size_t nd = static_cast<size_t>(config_.num_dense);
  padded_dense_.assign(dense_x, dense_x + static_cast<size_t>(B) * nd);
  padded_dense_.resize(static_cast<size_t>(P) * nd, T(0));
  if (P > B) {
    input_.bottomRows(P - B).setZero();
    first_order_.bottomRows(P - B).setZero();
    if (row_keys_.size() == P) row_keys_.tail(P - B).setZero();
  }
  padded_probs_.resize(P);
  scoring_rows_ = true;
  PredictFilled(P, padded_dense_.data(), padded_probs_.data());
  scoring_rows_ = false;
  std::copy(padded_probs_.begin(), padded_probs_.begin() + B, probs);
}

template class DeepFMModelT<float>;
template class DeepFMModelT<double>;

}  // namespace deepfm

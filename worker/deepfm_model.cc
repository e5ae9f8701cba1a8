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
                          beta);
        return;
      }
      dnn::ParallelGemm(*kernels, threads, a, lda, b, ldb, c, ldc, m, n, k, trans_a, trans_b, beta);
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
  return out;
}

template <typename T>
void DeepFMModelT<T>::LinearFm(int B, const T* dense_x) {
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  const int ND = config_.num_dense;
  fm_sum_.resize(B, D);
  linear_fm_.resize(B);
  const T bias = dense_[kLinearBias].values[0];
  const T* w_dense = dense_[kWDense].values.data();
  for (int b = 0; b < B; ++b) {
    T* in = input_.row(b).data();
    const T* w = first_order_.row(b).data();
    T linear = bias;
    for (int f = 0; f < F; ++f) linear += w[f];
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
  const DnnOps<T> ops{kernels_, config_.dnn_threads, config_.bf16, native_bf16_gemm_};
  // The DNN input (embeddings and dense features) is stored at bf16
  // precision too; the FM above used the pulled rows, already bf16 on the
  // wire.
  ops.RoundIfBf16(input_.data(), input_.size());
  const T* prev = input_.data();
  int prev_width = static_cast<int>(input_.cols());
  for (int i = 0; i < num_layers_; ++i) {
    const DenseTensorT<T>& kernel = dense_[KernelIndex(i)];
    const int out = static_cast<int>(kernel.shape[1]);
    Matrix& h = hidden_[i];
    h.resize(B, out);
    ops.Gemm(prev, prev_width, kernel.values.data(), out, h.data(), out, B, out, prev_width,
             /*trans_a=*/false, /*trans_b=*/false, T(0));
    // Bias and ReLU in one pass over the activations.
    ops.BiasRelu(h.data(), dense_[BiasIndex(i)].values.data(), B, out);
    prev = h.data();
    prev_width = out;
  }
  // The output layer is a matrix-vector product: too small to dispatch.
  const DenseTensorT<T>& out_kernel = dense_[KernelIndex(num_layers_)];
  const Eigen::Map<const ColVector> w_out(out_kernel.values.data(), out_kernel.shape[0]);
  logits_.resize(B);
  logits_.noalias() = Eigen::Map<const Matrix>(prev, B, prev_width) * w_out;
  logits_.array() += dense_[BiasIndex(num_layers_)].values[0] + linear_fm_.array();
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
void DeepFMModelT<T>::Forward(int B, const T* dense_x) {
  CHECK_GT(B, 0);
  CHECK_EQ(input_.rows(), B) << "BeginBatch(B) and the pooled features come first";
  if (config_.bf16) {
    // Weights at bf16 precision (a no-op when they were pulled as bf16).
    const DnnOps<T> ops{kernels_, config_.dnn_threads, true};
    for (auto& t : dense_) ops.RoundIfBf16(t.values.data(), static_cast<int64_t>(t.values.size()));
  }
  LinearFm(B, dense_x);
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

  const DnnOps<T> ops{kernels_, config_.dnn_threads, config_.bf16, native_bf16_gemm_};
  Matrix& top = d_hidden_[num_layers_ - 1];
  top.resize(B, last.cols());
  top.noalias() = dlogit_ * w_out.transpose();
  ops.ReluBackward(top.data(), last.data(), B, static_cast<int>(last.cols()),
                   dense_[BiasIndex(num_layers_ - 1)].grads.data());

  // Each d_hidden_[i] arrives masked, with its layer's bias gradient already
  // written by the ReluBackward that produced it.
  for (int i = num_layers_ - 1; i >= 0; --i) {
    const Matrix& prev = i > 0 ? hidden_[i - 1] : input_;
    const Matrix& dz = d_hidden_[i];
    DenseTensorT<T>& kernel = dense_[KernelIndex(i)];
    const int in = static_cast<int>(kernel.shape[0]);
    const int out = static_cast<int>(kernel.shape[1]);
    // dW[in x out] = prev^T dz.
    ops.Gemm(prev.data(), in, dz.data(), out, kernel.grads.data(), out, in, out, B,
             /*trans_a=*/true, /*trans_b=*/false, T(0));
    if (i > 0) {
      // dprev[B x in] = dz W^T.
      Matrix& dprev = d_hidden_[i - 1];
      dprev.resize(B, in);
      ops.Gemm(dz.data(), out, kernel.values.data(), out, dprev.data(), in, B, in, out,
               /*trans_a=*/false, /*trans_b=*/true, T(0));
      ops.ReluBackward(dprev.data(), prev.data(), B, in, dense_[BiasIndex(i - 1)].grads.data());
    } else {
      // Only the embedding columns need an input gradient: the dense
      // features are data. They are the kernel's first rows.
      d_embedding_.resize(B, embed_width);
      ops.Gemm(dz.data(), out, kernel.values.data(), out, d_embedding_.data(), embed_width, B,
               embed_width, out, /*trans_a=*/false, /*trans_b=*/true, T(0));
    }
  }
}

template <typename T>
T DeepFMModelT<T>::ForwardBackwardFilled(int B, const T* dense_x, const T* labels) {
  {
    obs::ScopedSpan span("forward");
    Forward(B, dense_x);
  }
  const T loss = MeanLoss(B, labels);
  obs::ScopedSpan span("backward");

  const T inv_b = T(1) / B;
  dlogit_.resize(B);
  for (int b = 0; b < B; ++b) dlogit_(b) = (Sigmoid(logits_(b)) - labels[b]) * inv_b;

  const int ND = config_.num_dense;
  Eigen::Map<ColVector>(dense_[kWDense].grads.data(), ND).noalias() =
      Eigen::Map<const Matrix>(dense_x, B, ND).transpose() * dlogit_;
  dense_[kLinearBias].grads[0] = dlogit_.sum();

  DnnBackward(B);

  // Per (b, f): the pooled embedding's gradient is the DNN's input gradient
  // plus the FM term dlogit * (sum_f' e_f' - e_f), made in place; the pooled
  // first-order weight's is dlogit.
  const int F = config_.num_fields;
  const int D = config_.embedding_dim;
  for (int b = 0; b < B; ++b) {
    const T g = dlogit_(b);
    const T* s = fm_sum_.row(b).data();
    const T* e_row = input_.row(b).data();
    T* de_row = d_embedding_.row(b).data();
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
  g.w = dlogit_.data();  // every feature of row b: dlogit(b)
  g.w_row = 1;
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
  std::fill(uniq_grads, uniq_grads + static_cast<size_t>(U) * W, T(0));
  for (int b = 0; b < B; ++b) {
    const T g = dlogit_(b);
    const T* de_row = d_embedding_.row(b).data();
    for (int f = 0; f < F; ++f) {
      T* out = uniq_grads + static_cast<size_t>(inverse[static_cast<size_t>(b) * F + f]) * W;
      const T* de = de_row + f * D;
      out[0] += g;
      for (int j = 0; j < D; ++j) out[1 + j] += de[j];
    }
  }
  return loss;
}

template <typename T>
T DeepFMModelT<T>::ForwardLoss(int B, const T* dense_x, const T* uniq_rows, int U,
                               const int32_t* inverse, const T* labels) {
  GatherRows(B, uniq_rows, U, inverse);
  Forward(B, dense_x);
  return MeanLoss(B, labels);
}

template <typename T>
T DeepFMModelT<T>::ForwardLossPooled(int B, const T* dense_x, const T* pooled, const T* labels) {
  CopyPooled(B, pooled);
  Forward(B, dense_x);
  return MeanLoss(B, labels);
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
  Forward(B, dense_x);
  for (int b = 0; b < B; ++b) probs[b] = Sigmoid(logits_(b));
}

template class DeepFMModelT<float>;
template class DeepFMModelT<double>;

}  // namespace deepfm

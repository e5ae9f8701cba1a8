// DeepFM forward/backward on one batch of pooled features. Two networks
// (DESIGN.md sections 3 and 3b), picked by DeepFMConfig:
//
// The model-zoo Criteo DeepFM (the defaults):
//   logit = b + sum_f w_f + w_dense . x                            (linear)
//         + 1/2 sum_j [(sum_f e_{f,j})^2 - sum_f e_{f,j}^2]       (FM)
//         + MLP(concat(e_1..e_F, x))                              (DNN, ReLU)
//   loss  = mean binary cross-entropy of sigmoid(logit).
//
// DeepRec tianchi train.py's, with final_hidden_units set:
//   dnn   = MLP(concat(e_1..e_F, x)), each layer Dense -> ReLU [-> BN]
//   fm    = the FM above per j (a vector of D) or summed (scalar)
//   lin   = the linear part above, or (weightless) the row's key count + sum x
//   logit = Dense(MLP_final(concat(dnn, lin, fm)))
//   loss  = logloss, or the mean of (sigmoid(logit) - y)^2 (MSE).
//
// Batch normalisation (tf.layers.batch_normalization) normalises with the
// batch's mean and biased variance while training, and with the moving
// statistics when predicting. Its moving statistics are dense tensors with
// no gradient: after a training step their `grads` hold the batch's
// statistics, which the shards fold in (DenseTensorSpec::moving_average).
//
// The model owns the dense parameters (a fixed, named list of tensors, the
// order and shapes the parameter servers use too); embedding rows are passed
// in per call, because they live on the servers.
//
// The math is templated on the scalar so tests can check gradients in double;
// training uses DeepFMModel (float). The float model's GEMMs, bias+ReLU and
// ReLU backward run on dnn::Kernels picked at run time (AVX-512, AVX2+FMA or
// baseline; worker/dnn_kernels.h); batch normalisation runs on plain loops
// in this TU (every path gives the same sums); the double model stays on
// plain Eigen.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

namespace deepfm {

namespace dnn {
struct Kernels;
using GemmFn = void (*)(const float* a, int lda, const float* b, int ldb, float* c, int ldc, int m,
                        int n, int k, bool trans_a, bool trans_b, float beta);
}  // namespace dnn

struct DeepFMConfig {
  // Features (pooled embeddings) and numeric inputs per row; a trainer takes
  // them from its feature spec (spec/feature_spec.h). The defaults are the
  // criteo preset's.
  int num_fields = 26;
  int num_dense = 13;
  int embedding_dim = 16;
  std::vector<int> hidden_units{1024, 256, 32};
  // DNN kernel path of the float model: empty follows the process-wide
  // choice (DEEPFM_ISA, else the best the CPU has); "generic", "avx2" or
  // "avx512" force one, and the model refuses (fatal) one the CPU lacks.
  std::string dnn_isa;
  // Threads for each float DNN GEMM (dnn::ParallelGemm: oneTBB tasks in the
  // process's arena, the calling thread taking part). 1 keeps the step on
  // the caller's core. `deepfm` picks it from the cores and the job's shape
  // unless --dnn_threads says otherwise.
  int dnn_threads = 1;
  // BF16 training (float model only): weights, the DNN input, every hidden
  // activation and every activation gradient are stored at bfloat16
  // precision (round to nearest even) while every GEMM and sum accumulates in
  // fp32; the logit, sigmoid and loss stay fp32. The rounding is fused into
  // the bias+ReLU and ReLU-backward passes. On the avx512 path of a CPU with
  // AVX512_BF16 the GEMMs pack their operands to bf16 and run on vdpbf16ps
  // (dnn::NativeBf16Gemm); elsewhere the fp32 kernels run on the bf16 values.
  bool bf16 = false;
  // false: bias, ReLU and the bf16 rounding each in a pass of its own on
  // plain loops, and the ReLU mask apart from the bias gradient's sums
  // (--op_fusion=false, what an unfused graph does); the same math, equal
  // to float rounding.
  bool op_fusion = true;

  // The network (spec::Model, proto/feature_spec.proto).
  std::vector<int> final_hidden_units;  // empty: the Criteo network
  bool batch_norm = false;
  float batch_norm_momentum = 0.99f;
  float batch_norm_epsilon = 1e-3f;
  enum class Fm { kScalar, kVector };
  enum class Linear { kLearned, kWeightless };
  enum class Loss { kLogloss, kMse };
  Fm fm = Fm::kScalar;
  Linear linear = Linear::kLearned;
  Loss loss = Loss::kLogloss;

  bool has_final() const { return !final_hidden_units.empty(); }
  int fm_width() const { return fm == Fm::kVector ? embedding_dim : 1; }

  // An embedding row: [w_k (first-order weight), e_k[0..D)].
  int row_width() const { return embedding_dim + 1; }
  // num_fields * embedding_dim + num_dense (429 for the defaults).
  int dnn_input_width() const { return num_fields * embedding_dim + num_dense; }
};

// Name and shape of one dense parameter tensor; kernels are [in, out]
// row-major.
struct DenseTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  // No optimizer: a training step's "gradient" is a batch statistic, and the
  // value follows it as v <- v - (v - batch) * (1 - momentum).
  bool moving_average = false;
  float momentum = 0;
  int64_t size() const;
};

// The dense parameters of `config` in their fixed order:
//   linear/w_dense [num_dense], linear/bias [1]            (learned linear)
//   dnn/layer{i}/kernel [in, out], dnn/layer{i}/bias [out]   (i = 0, 1, ...),
//     with batch norm also dnn/layer{i}/bn/{gamma, beta, moving_mean,
//     moving_variance} [out]
//   final_dnn/layer{i}/... the same                          (final DNN)
//   dnn/out/kernel [last, 1], dnn/out/bias [1]   (final_dnn/out/... with a
//                                                 final DNN)
// The Criteo network's list is the one it always had.
std::vector<DenseTensorSpec> DeepFMDenseSpecs(const DeepFMConfig& config);

// Initial values of one tensor, a function of (seed, spec.name) only, so every
// worker and server computes the same: "*/kernel" tensors Glorot-uniform
// (limit sqrt(6 / (in + out))) from a SplitMix64 stream seeded by the seed
// and the name's hash; "*/gamma" and "*/moving_variance" 1; everything else 0. `out` holds spec.size() values.
template <typename T>
void InitDenseTensor(const DenseTensorSpec& spec, uint64_t seed, T* out);

// Where pooled features (or their gradients) live for a batch: feature f of
// row b has its first-order weight at w[b * w_row + f * w_feature] and its
// embedding at e[b * e_row + f * e_feature .. + D). Lets a pooling write
// straight into the model's input and read its gradients in place.
template <typename T>
struct PooledLayout {
  T* e = nullptr;
  size_t e_row = 0, e_feature = 0;
  T* w = nullptr;
  size_t w_row = 0, w_feature = 0;
  // When set, row b's count of keys over every feature (the weightless
  // linear part's input) at row_keys[b]; a pooling writes it.
  T* row_keys = nullptr;
};

template <typename T>
struct DenseTensorT {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<T> values;
  // Gradient of the mean batch loss, overwritten by each ForwardBackward.
  std::vector<T> grads;
};
using DenseTensor = DenseTensorT<float>;

template <typename T>
class DeepFMModelT {
 public:
  using Scalar = T;

  // Allocates the dense tensors (values 0; call InitDense or copy values in).
  explicit DeepFMModelT(DeepFMConfig config);

  const DeepFMConfig& config() const { return config_; }
  // The float model's kernel table (null for double).
  const dnn::Kernels* kernels() const { return kernels_; }
  // The dense parameters, in DeepFMDenseSpecs order. Callers may overwrite
  // values (e.g. after a pull) but must not resize them.
  std::vector<DenseTensorT<T>>& dense() { return dense_; }
  const std::vector<DenseTensorT<T>>& dense() const { return dense_; }
  // nullptr when no tensor has that name.
  DenseTensorT<T>* FindDense(const std::string& name);

  // Sets every dense tensor to InitDenseTensor(spec, seed).
  void InitDense(uint64_t seed);

  // One training step's math on a batch of B rows whose keys were
  // de-duplicated into U unique rows:
  //   dense_x   [B x num_dense]     transformed dense features
  //   uniq_rows [U x row_width]     the unique keys' rows
  //   inverse   [B x num_fields]    row of (b, f) in uniq_rows, each in [0, U)
  //   labels    [B]                 0 or 1
  //   uniq_grads[U x row_width]     out: zeroed, then the gradient of the mean
  //                                 loss summed over every (b, f) using a row
  // Returns the mean loss and writes every dense tensor's grads (a moving
  // statistic's "grads": the batch's mean or biased variance). Buffers are
  // reused, so after the first call at a given B this allocates nothing
  // (apart from what Eigen's GEMM kernels may take for large blocks).
  T ForwardBackward(int B, const T* dense_x, const T* uniq_rows, int U, const int32_t* inverse,
                    const T* labels, T* uniq_grads);

  // The trainer's path, on pooled features (worker/pooling.h) written in
  // place: BeginBatch(B) sizes the input and says where each (b, f)'s
  // pooled [w, e] goes; once filled, ForwardBackwardFilled runs the step,
  // after which Gradients() says where the gradient of the mean loss with
  // respect to each pooled w and e is (valid until the next batch).
  // ForwardBackward above is this with one key's row per (b, f).
  PooledLayout<T> BeginBatch(int B);
  T ForwardBackwardFilled(int B, const T* dense_x, const T* labels);
  PooledLayout<T> Gradients();
  // Forward only with batch normalisation's moving statistics.
  void PredictFilled(int B, const T* dense_x, T* probs);

  // Scoring whose every row is independent of the rows beside it. Eigen's
  // GEMM sums the rows past the last 4-lane packet of a block in another
  // order (and a 1-row product is a GEMV), so with PredictFilled a row's
  // probability changes in its last bits with the batch it shares. Run on
  // PredictRows(B) rows (a multiple of kPredictRowBlock), every row takes a
  // packet path, which all sum a row alike (checked on the avx512, avx2 and
  // generic paths by the serving tests), and with the GEMMs split across
  // threads by rows only
  // (dnn::ParallelGemm's rows_only) the thread count does not matter
  // either: a row scores the same alone, batched with others, or in an
  // evaluation batch on any number of threads. Call BeginBatch(PredictRows(B)), fill B rows, then
  // PredictRowsFilled (which zeroes the padding rows).
  static constexpr int kPredictRowBlock = 4;
  static int PredictRows(int B) { return (B + kPredictRowBlock - 1) / kPredictRowBlock * kPredictRowBlock; }
  void PredictRowsFilled(int B, const T* dense_x, T* probs);
  // The training forward's mean loss (batch statistics), on the filled input.
  T ForwardLossFilled(int B, const T* dense_x, const T* labels);

  // The same on a packed buffer, pooled[B x num_fields x row_width] of
  // [w, e[0..D)] per (b, f), with d_pooled of the same shape (tests).
  T ForwardBackwardPooled(int B, const T* dense_x, const T* pooled, const T* labels, T* d_pooled);
  T ForwardLossPooled(int B, const T* dense_x, const T* pooled, const T* labels);
  void PredictPooled(int B, const T* dense_x, const T* pooled, T* probs);

  // Forward only: the mean loss of the training forward (same inputs as
  // ForwardBackward).
  T ForwardLoss(int B, const T* dense_x, const T* uniq_rows, int U, const int32_t* inverse,
                const T* labels);

  // Forward only: click probabilities, probs[B].
  void Predict(int B, const T* dense_x, const T* uniq_rows, int U, const int32_t* inverse,
               T* probs);

 private:
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColVector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  // Where one hidden layer's tensors are in dense_ (-1: none).
  struct LayerIndex {
    int kernel = -1, bias = -1;
    int gamma = -1, beta = -1, moving_mean = -1, moving_variance = -1;
  };
  // One MLP's per-batch buffers: per layer its post-ReLU activations, with
  // batch norm its output and the batch's per-unit mean and 1/sqrt(var+eps),
  // and the gradients (of the pre-activation, then of each layer's output).
  struct Stack {
    std::vector<LayerIndex> layers;
    std::vector<Matrix> act, bn_out, d;
    std::vector<std::vector<T>> mean, inv_std;
    const Matrix& Out(int i) const { return bn_out[i].size() > 0 ? bn_out[i] : act[i]; }
  };

  // On input_ and first_order_ as filled: the linear and FM parts, then the
  // DNN(s), then logits_. `training`: batch norm on batch statistics (and
  // their values into the moving tensors' grads).
  void Forward(int B, const T* dense_x, bool training);
  void LinearFm(int B, const T* dense_x);
  // Fill input_ and first_order_: one key's row per (b, f), or a packed
  // pooled buffer.
  void GatherRows(int B, const T* uniq_rows, int U, const int32_t* inverse);
  void CopyPooled(int B, const T* pooled);
  // Runs `stack` on in[B x in_width]; returns its output.
  const Matrix& StackForward(Stack* stack, int B, const Matrix& in, bool training);
  void BatchNormForward(const LayerIndex& li, Stack* stack, int i, int B, bool training);
  // Reads stack->d.back() (dLoss/d(the stack's output)), writes the
  // stack's grads; when d_in is set, the
  // gradient of the input's first d_in_width columns into it.
  void StackBackward(Stack* stack, int B, const Matrix& in, Matrix* d_in, int d_in_width);
  void BatchNormBackward(const LayerIndex& li, Stack* stack, int i, int B);
  void DnnForward(int B, bool training);
  // Reads dlogit_, writes the DNN grads and d_embedding_ (dLoss/d(e part of
  // input_)), and the linear and FM parts' gradients.
  void DnnBackward(int B);
  T MeanLoss(int B, const T* labels) const;

  DeepFMConfig config_;
  // The float model's kernel table; null for double (Eigen in this TU).
  const dnn::Kernels* kernels_ = nullptr;
  // BF16 training on the avx512 path of a CPU with AVX512_BF16: the GEMMs
  // on native bf16 dot products (dnn::NativeBf16Gemm); else null.
  dnn::GemmFn native_bf16_gemm_ = nullptr;
  std::vector<DenseTensorT<T>> dense_;
  int w_dense_ = -1, linear_bias_ = -1;  // learned linear only
  int out_kernel_ = -1, out_bias_ = -1;
  Stack dnn_, final_;

  // Per-batch buffers, [B x ...] row-major, resized only when B changes.
  Matrix input_;                // DNN input: e_1..e_F, x
  Matrix fm_sum_;               // sum_f e_f, for the FM backward
  ColVector linear_fm_;         // linear + FM part of the logit (no final DNN)
  Matrix final_input_;          // concat(dnn out, linear, fm) (final DNN)
  Matrix d_final_input_;
  ColVector row_keys_;          // the weightless linear part's key counts
  ColVector d_linear_;          // dLoss/d(linear part) per row
  Matrix d_fm_;                 // dLoss/d(fm) per row, fm_width columns
  ColVector zero_;              // a zero first-order gradient (weightless)
  ColVector logits_;
  ColVector dlogit_;
  Matrix d_embedding_;            // dLoss/d(embedding part of input_), then of the pooled e
  Matrix first_order_;            // [B x F] pooled first-order weights
  std::vector<T> padded_dense_, padded_probs_;  // PredictRowsFilled
  bool scoring_rows_ = false;  // within PredictRowsFilled: GEMMs split by rows only
};

using DeepFMModel = DeepFMModelT<float>;

extern template class DeepFMModelT<float>;
extern template class DeepFMModelT<double>;

}  // namespace deepfm

// train.py's network (worker/deepfm_model.h with final_hidden_units): batch
// normalisation, the vector FM, the weightless linear part, the final DNN
// and MSE, checked three ways: by finite differences of the model's own
// loss, against an independent forward written here from DESIGN.md §3b, and
// through the moving statistics' round trip into prediction.
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "worker/deepfm_model.h"

namespace deepfm {
namespace {

using Config = DeepFMConfig;

struct Variant {
  const char* name;
  std::vector<int> hidden, final_hidden;
  bool batch_norm;
  Config::Fm fm;
  Config::Linear linear;
  Config::Loss loss;
};

Config MakeConfig(const Variant& v) {
  Config c;
  c.num_fields = 4;
  c.num_dense = 3;
  c.embedding_dim = 3;
  c.hidden_units = v.hidden;
  c.final_hidden_units = v.final_hidden;
  c.batch_norm = v.batch_norm;
  c.fm = v.fm;
  c.linear = v.linear;
  c.loss = v.loss;
  return c;
}

const Variant kVariants[] = {
    {"exact", {6, 5}, {5, 4}, true, Config::Fm::kVector, Config::Linear::kWeightless,
     Config::Loss::kMse},
    {"exact_logloss", {6, 5}, {5, 4}, true, Config::Fm::kVector, Config::Linear::kWeightless,
     Config::Loss::kLogloss},
    {"final_learned_scalar", {5}, {4}, true, Config::Fm::kScalar, Config::Linear::kLearned,
     Config::Loss::kMse},
    {"final_no_bn", {5}, {4}, false, Config::Fm::kVector, Config::Linear::kLearned,
     Config::Loss::kLogloss},
    {"criteo_with_bn", {6, 4}, {}, true, Config::Fm::kScalar, Config::Linear::kLearned,
     Config::Loss::kLogloss},
    {"final_over_raw_input", {}, {5}, true, Config::Fm::kVector, Config::Linear::kLearned,
     Config::Loss::kMse},
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <typename T>
void InitForTest(DeepFMModelT<T>* model, uint64_t seed) {
  model->InitDense(seed);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<double> normal(0, 0.3);
  for (auto& t : model->dense()) {
    if (EndsWith(t.name, "/kernel") || EndsWith(t.name, "/moving_mean") ||
        EndsWith(t.name, "/moving_variance")) {
      continue;
    }
    for (T& v : t.values) v = static_cast<T>((EndsWith(t.name, "/gamma") ? 1.0 : 0.0) + normal(rng));
  }
}

// Pooled inputs [B x F x (D + 1)] and numerics.
struct Inputs {
  int B;
  std::vector<double> pooled, x, labels;
};

Inputs MakeInputs(const Config& c, int B, uint64_t seed) {
  Inputs in{B, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 0.5);
  for (int i = 0; i < B * c.num_fields * c.row_width(); ++i) in.pooled.push_back(normal(rng));
  for (int i = 0; i < B * c.num_dense; ++i) in.x.push_back(normal(rng));
  for (int b = 0; b < B; ++b) in.labels.push_back(b % 3 == 0 ? 1.0 : 0.0);
  return in;
}

class TianchiGradientCheck : public ::testing::TestWithParam<Variant> {};

TEST_P(TianchiGradientCheck, EveryTrainableTensorAndInputMatchesFiniteDifferences) {
  const Config c = MakeConfig(GetParam());
  DeepFMModelT<double> model(c);
  InitForTest(&model, 7);
  Inputs in = MakeInputs(c, 6, 3);
  const int W = c.row_width();
  std::vector<double> d_pooled(in.pooled.size(), 123.0);
  model.ForwardBackwardPooled(in.B, in.x.data(), in.pooled.data(), in.labels.data(), d_pooled.data());
  std::vector<std::vector<double>> grads;
  for (const auto& t : model.dense()) grads.push_back(t.grads);
  auto loss = [&] {
    return model.ForwardLossPooled(in.B, in.x.data(), in.pooled.data(), in.labels.data());
  };
  const double h = 1e-5;
  auto numeric = [&](double* v) {
    const double saved = *v;
    *v = saved + h;
    const double up = loss();
    *v = saved - h;
    const double down = loss();
    *v = saved;
    return (up - down) / (2 * h);
  };
  auto expect_close = [](double a, double fd, const std::string& what) {
    EXPECT_NEAR(a, fd, 1e-6 * std::max(std::abs(a), std::abs(fd)) + 1e-9) << what;
  };
  double max_e = 0, max_w = 0;
  for (size_t i = 0; i < in.pooled.size(); ++i) {
    expect_close(d_pooled[i], numeric(&in.pooled[i]), "pooled[" + std::to_string(i) + "]");
    (i % W == 0 ? max_w : max_e) = std::max(i % W == 0 ? max_w : max_e, std::abs(d_pooled[i]));
  }
  EXPECT_GT(max_e, 1e-4) << "embedding gradients all ~0: the check proves nothing";
  if (c.linear == Config::Linear::kWeightless) {
    EXPECT_EQ(max_w, 0.0) << "a weightless linear part has no first-order weights to train";
  } else {
    EXPECT_GT(max_w, 1e-4) << "first-order gradients all ~0";
  }
  int moving = 0;
  for (size_t t = 0; t < model.dense().size(); ++t) {
    auto& tensor = model.dense()[t];
    if (EndsWith(tensor.name, "/moving_mean") || EndsWith(tensor.name, "/moving_variance")) {
      ++moving;  // no gradient: the training forward does not read them
      continue;
    }
    double max_g = 0;
    for (size_t i = 0; i < tensor.values.size(); ++i) {
      expect_close(grads[t][i], numeric(&tensor.values[i]), tensor.name + "[" + std::to_string(i) + "]");
      max_g = std::max(max_g, std::abs(grads[t][i]));
    }
    EXPECT_GT(max_g, 1e-5) << tensor.name << " gradients all ~0";
  }
  const size_t layers = c.hidden_units.size() + c.final_hidden_units.size();
  EXPECT_EQ(moving, c.batch_norm ? static_cast<int>(2 * layers) : 0);
}

INSTANTIATE_TEST_SUITE_P(Networks, TianchiGradientCheck, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

// DESIGN.md §3b's forward, written apart from the model: plain matrices.
using M = Eigen::MatrixXd;

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

struct Reference {
  const DeepFMModelT<double>& model;
  const Config& c;
  std::vector<std::vector<double>> batch_means, batch_vars;

  M Tensor(const std::string& name, int rows, int cols) const {
    for (const auto& t : model.dense()) {
      if (t.name == name) {
        M m(rows, cols);
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) m(i, j) = t.values[i * cols + j];
        return m;
      }
    }
    ADD_FAILURE() << "no tensor " << name;
    return M::Zero(rows, cols);
  }

  M Mlp(const std::string& prefix, const std::vector<int>& units, M h, bool training) {
    for (size_t i = 0; i < units.size(); ++i) {
      const std::string l = prefix + "/layer" + std::to_string(i);
      const int in = static_cast<int>(h.cols()), out = units[i];
      M z = h * Tensor(l + "/kernel", in, out);
      z.rowwise() += Tensor(l + "/bias", 1, out).row(0);
      M a = z.cwiseMax(0.0);
      if (c.batch_norm) {
        const double eps = c.batch_norm_epsilon;
        M mean(1, out), var(1, out);
        if (training) {
          mean = a.colwise().mean();
          var = (a.rowwise() - mean.row(0)).array().square().colwise().mean();
          batch_means.push_back({mean.data(), mean.data() + out});
          batch_vars.push_back({var.data(), var.data() + out});
        } else {
          mean = Tensor(l + "/bn/moving_mean", 1, out);
          var = Tensor(l + "/bn/moving_variance", 1, out);
        }
        const M gamma = Tensor(l + "/bn/gamma", 1, out), beta = Tensor(l + "/bn/beta", 1, out);
        for (int b = 0; b < a.rows(); ++b) {
          for (int j = 0; j < out; ++j) {
            a(b, j) = gamma(0, j) * (a(b, j) - mean(0, j)) / std::sqrt(var(0, j) + eps) + beta(0, j);
          }
        }
      }
      h = a;
    }
    return h;
  }

  std::vector<double> Probs(const Inputs& in, bool training) {
    const int F = c.num_fields, D = c.embedding_dim, ND = c.num_dense, W = c.row_width();
    M x0(in.B, F * D + ND);
    std::vector<double> linear(in.B), fm_scalar(in.B);
    M fm(in.B, D);
    for (int b = 0; b < in.B; ++b) {
      double lin = 0;
      if (c.linear == Config::Linear::kWeightless) {
        lin = F;  // one key per feature in a packed buffer
        for (int d = 0; d < ND; ++d) lin += in.x[b * ND + d];
      } else {
        lin = Tensor("linear/bias", 1, 1)(0, 0);
        const M wd = Tensor("linear/w_dense", 1, ND);
        for (int f = 0; f < F; ++f) lin += in.pooled[(b * F + f) * W];
        for (int d = 0; d < ND; ++d) lin += wd(0, d) * in.x[b * ND + d];
      }
      linear[b] = lin;
      fm_scalar[b] = 0;
      for (int j = 0; j < D; ++j) {
        double sum = 0, sq = 0;
        for (int f = 0; f < F; ++f) {
          const double e = in.pooled[(b * F + f) * W + 1 + j];
          x0(b, f * D + j) = e;
          sum += e;
          sq += e * e;
        }
        fm(b, j) = 0.5 * (sum * sum - sq);
        fm_scalar[b] += fm(b, j);
      }
      for (int d = 0; d < ND; ++d) x0(b, F * D + d) = in.x[b * ND + d];
    }
    const M h = Mlp("dnn", c.hidden_units, x0, training);
    std::vector<double> probs(in.B);
    if (c.final_hidden_units.empty()) {
      const M out = h * Tensor("dnn/out/kernel", static_cast<int>(h.cols()), 1);
      for (int b = 0; b < in.B; ++b) {
        probs[b] = Sigmoid(out(b, 0) + Tensor("dnn/out/bias", 1, 1)(0, 0) + linear[b] + fm_scalar[b]);
      }
      return probs;
    }
    const int fmw = c.fm == Config::Fm::kVector ? D : 1;
    M cat(in.B, h.cols() + 1 + fmw);
    for (int b = 0; b < in.B; ++b) {
      cat.row(b).head(h.cols()) = h.row(b);
      cat(b, h.cols()) = linear[b];
      if (fmw == 1) {
        cat(b, h.cols() + 1) = fm_scalar[b];
      } else {
        cat.row(b).tail(D) = fm.row(b);
      }
    }
    const M g = Mlp("final_dnn", c.final_hidden_units, cat, training);
    const M out = g * Tensor("final_dnn/out/kernel", static_cast<int>(g.cols()), 1);
    for (int b = 0; b < in.B; ++b) probs[b] = Sigmoid(out(b, 0) + Tensor("final_dnn/out/bias", 1, 1)(0, 0));
    return probs;
  }
};

double MeanLoss(const Config& c, const std::vector<double>& p, const std::vector<double>& y) {
  double sum = 0;
  for (size_t b = 0; b < p.size(); ++b) {
    sum += c.loss == Config::Loss::kMse ? (p[b] - y[b]) * (p[b] - y[b])
                                        : -(y[b] * std::log(p[b]) + (1 - y[b]) * std::log(1 - p[b]));
  }
  return sum / p.size();
}

class TianchiForward : public ::testing::TestWithParam<Variant> {};

TEST_P(TianchiForward, TrainingLossBatchStatisticsAndPredictionMatchTheReference) {
  const Config c = MakeConfig(GetParam());
  DeepFMModelT<double> model(c);
  InitForTest(&model, 21);
  const Inputs in = MakeInputs(c, 8, 5);
  std::vector<double> d_pooled(in.pooled.size());
  const double loss =
      model.ForwardBackwardPooled(in.B, in.x.data(), in.pooled.data(), in.labels.data(), d_pooled.data());
  Reference ref{model, c, {}, {}};
  EXPECT_NEAR(loss, MeanLoss(c, ref.Probs(in, /*training=*/true), in.labels), 1e-12);

  // The batch statistics the step hands the shards: each BN layer's mean
  // and biased variance, in layer order (dnn, then final_dnn).
  size_t layer = 0;
  for (auto& t : model.dense()) {
    if (EndsWith(t.name, "/moving_mean")) {
      ASSERT_LT(layer, ref.batch_means.size());
      for (size_t j = 0; j < t.grads.size(); ++j) {
        EXPECT_NEAR(t.grads[j], ref.batch_means[layer][j], 1e-12) << t.name;
      }
    } else if (EndsWith(t.name, "/moving_variance")) {
      for (size_t j = 0; j < t.grads.size(); ++j) {
        EXPECT_NEAR(t.grads[j], ref.batch_vars[layer][j], 1e-12) << t.name;
      }
      ++layer;
    }
  }
  EXPECT_EQ(layer, ref.batch_means.size());

  // Prediction reads the moving statistics: with made-up ones it matches
  // the reference's inference forward and differs from the training one.
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u(0.2, 1.5);
  for (auto& t : model.dense()) {
    if (EndsWith(t.name, "/moving_mean") || EndsWith(t.name, "/moving_variance")) {
      for (double& v : t.values) v = u(rng);
    }
  }
  std::vector<double> probs(in.B);
  model.PredictPooled(in.B, in.x.data(), in.pooled.data(), probs.data());
  const std::vector<double> want = ref.Probs(in, /*training=*/false);
  const std::vector<double> train = ref.Probs(in, /*training=*/true);
  double moved = 0;
  for (int b = 0; b < in.B; ++b) {
    EXPECT_NEAR(probs[b], want[b], 1e-12) << b;
    moved = std::max(moved, std::abs(want[b] - train[b]));
  }
  if (c.batch_norm) {
    EXPECT_GT(moved, 1e-4) << "the moving statistics changed nothing";
  }
}

INSTANTIATE_TEST_SUITE_P(Networks, TianchiForward, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

// With each layer's moving statistics set to the batch's, prediction is the
// training forward exactly (layer by layer the inputs agree), in float too.
TEST(TianchiNetworkTest, MovingStatisticsEqualToTheBatchsGiveTheTrainingForward) {
  const Config c = MakeConfig(kVariants[0]);
  DeepFMModelT<float> model(c);
  InitForTest(&model, 4);
  const Inputs in = MakeInputs(c, 16, 8);
  const std::vector<float> pooled(in.pooled.begin(), in.pooled.end()), x(in.x.begin(), in.x.end()),
      y(in.labels.begin(), in.labels.end());
  std::vector<float> d(pooled.size());
  const float loss = model.ForwardBackwardPooled(in.B, x.data(), pooled.data(), y.data(), d.data());
  for (auto& t : model.dense()) {
    if (EndsWith(t.name, "/moving_mean") || EndsWith(t.name, "/moving_variance")) t.values = t.grads;
  }
  std::vector<float> probs(in.B);
  model.PredictPooled(in.B, x.data(), pooled.data(), probs.data());
  double mse = 0;
  for (int b = 0; b < in.B; ++b) mse += (probs[b] - y[b]) * (probs[b] - y[b]);
  EXPECT_NEAR(mse / in.B, loss, 1e-6);
}

// --op_fusion=false runs the bias, ReLU and rounding passes apart on plain
// loops: the same step to float rounding, on fp32 and bf16.
TEST(TianchiNetworkTest, UnfusedOpsGiveTheFusedStep) {
  for (bool bf16 : {false, true}) {
    Config c = MakeConfig(kVariants[0]);
    c.bf16 = bf16;
    Config unfused = c;
    unfused.op_fusion = false;
    DeepFMModelT<float> a(c), b(unfused);
    InitForTest(&a, 2);
    for (size_t t = 0; t < a.dense().size(); ++t) b.dense()[t].values = a.dense()[t].values;
    const Inputs in = MakeInputs(c, 32, 1);
    const std::vector<float> pooled(in.pooled.begin(), in.pooled.end()), x(in.x.begin(), in.x.end()),
        y(in.labels.begin(), in.labels.end());
    std::vector<float> da(pooled.size()), db(pooled.size());
    const float la = a.ForwardBackwardPooled(in.B, x.data(), pooled.data(), y.data(), da.data());
    const float lb = b.ForwardBackwardPooled(in.B, x.data(), pooled.data(), y.data(), db.data());
    EXPECT_NEAR(la, lb, 1e-6) << "bf16 " << bf16;
    for (size_t i = 0; i < da.size(); ++i) EXPECT_NEAR(da[i], db[i], 1e-5) << i;
    for (size_t t = 0; t < a.dense().size(); ++t) {
      for (size_t i = 0; i < a.dense()[t].grads.size(); ++i) {
        EXPECT_NEAR(a.dense()[t].grads[i], b.dense()[t].grads[i], 1e-5) << a.dense()[t].name;
      }
    }
  }
}

TEST(TianchiNetworkTest, DenseTensorsOfTheExactNetwork) {
  Config c = MakeConfig(kVariants[0]);
  c.num_fields = 24;
  c.num_dense = 12;
  c.embedding_dim = 16;
  c.hidden_units = {512, 128, 32};
  c.final_hidden_units = {128, 64};
  std::vector<std::string> names;
  int64_t moving = 0, trainable = 0;
  for (const DenseTensorSpec& s : DeepFMDenseSpecs(c)) {
    names.push_back(s.name);
    (s.moving_average ? moving : trainable) += s.size();
    if (s.moving_average) {
      EXPECT_FLOAT_EQ(s.momentum, 0.99f) << s.name;
    }
  }
  ASSERT_EQ(names.size(), 5 * 6 + 2u);
  EXPECT_EQ(names[0], "dnn/layer0/kernel");
  EXPECT_EQ(names[4], "dnn/layer0/bn/moving_mean");
  EXPECT_EQ(names[18], "final_dnn/layer0/kernel");
  EXPECT_EQ(names.back(), "final_dnn/out/bias");
  // 396 -> 512 -> 128 -> 32, then 49 -> 128 -> 64 -> 1; 4 BN vectors a layer.
  const int64_t kernels = 396 * 512 + 512 * 128 + 128 * 32 + 49 * 128 + 128 * 64 + 64;
  const int64_t units = 512 + 128 + 32 + 128 + 64;
  EXPECT_EQ(trainable, kernels + units + 2 * units + 1);
  EXPECT_EQ(moving, 2 * units);
  DeepFMModelT<float> m(c);
  m.InitDense(1);
  EXPECT_EQ(m.FindDense("dnn/layer1/bn/gamma")->values[0], 1.0f);
  EXPECT_EQ(m.FindDense("dnn/layer1/bn/moving_variance")->values[0], 1.0f);
  EXPECT_EQ(m.FindDense("dnn/layer1/bn/moving_mean")->values[0], 0.0f);
  EXPECT_EQ(m.FindDense("dnn/layer1/bn/beta")->values[0], 0.0f);
}

}  // namespace
}  // namespace deepfm

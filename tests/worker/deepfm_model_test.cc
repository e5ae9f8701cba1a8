#include "common/bf16.h"
#include "worker/deepfm_model.h"

#include <cmath>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/hash.h"
#include "common/random.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/dnn_kernels.h"
#include "worker/key_dedup.h"
#include "worker/metrics.h"

namespace deepfm {
namespace {

DeepFMConfig SmallConfig(std::vector<int> hidden = {8, 4}) {
  DeepFMConfig c;
  c.num_fields = 5;
  c.num_dense = 3;
  c.embedding_dim = 4;
  c.hidden_units = std::move(hidden);
  return c;
}

// A batch whose rows share keys (within a row and across rows), so the
// scatter-add of embedding gradients is exercised.
template <typename T>
struct Problem {
  int B = 0;
  int U = 0;
  std::vector<T> dense_x, rows, labels;
  std::vector<int32_t> inverse;
};

template <typename T>
Problem<T> MakeProblem(const DeepFMConfig& c, int B, uint64_t seed) {
  Problem<T> p;
  p.B = B;
  p.U = B * c.num_fields / 2 + 1;  // fewer rows than uses: duplicates guaranteed
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 0.4);
  std::uniform_real_distribution<double> uniform(0, 2);
  for (int i = 0; i < p.U * c.row_width(); ++i) p.rows.push_back(static_cast<T>(normal(rng)));
  for (int i = 0; i < B * c.num_dense; ++i) p.dense_x.push_back(static_cast<T>(uniform(rng)));
  for (int i = 0; i < B * c.num_fields; ++i) {
    // The last unique row is never used: its gradient must stay 0.
    p.inverse.push_back(static_cast<int32_t>(rng() % (p.U - 1)));
  }
  p.inverse[1] = p.inverse[0];  // same key twice in one row
  for (int b = 0; b < B; ++b) p.labels.push_back(static_cast<T>(b % 2));
  return p;
}

// Glorot kernels plus non-zero biases and linear weights, so every gradient
// path carries signal.
template <typename T>
void InitForTest(DeepFMModelT<T>* model, uint64_t seed) {
  model->InitDense(seed);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<double> normal(0, 0.2);
  for (auto& t : model->dense()) {
    if (t.name.size() >= 7 && t.name.compare(t.name.size() - 7, 7, "/kernel") == 0) continue;
    for (T& v : t.values) v = static_cast<T>(normal(rng));
  }
}

class GradientCheck : public ::testing::TestWithParam<std::vector<int>> {};

TEST_P(GradientCheck, EveryParameterGroupMatchesFiniteDifferences) {
  const DeepFMConfig c = SmallConfig(GetParam());
  DeepFMModelT<double> model(c);
  InitForTest(&model, 11);
  Problem<double> p = MakeProblem<double>(c, 4, 5);
  const int W = c.row_width();

  std::vector<double> row_grads(p.U * W, 123.0);  // must be overwritten
  model.ForwardBackward(p.B, p.dense_x.data(), p.rows.data(), p.U, p.inverse.data(),
                        p.labels.data(), row_grads.data());
  std::vector<std::vector<double>> dense_grads;
  for (const auto& t : model.dense()) dense_grads.push_back(t.grads);

  auto loss = [&]() {
    return model.ForwardLoss(p.B, p.dense_x.data(), p.rows.data(), p.U, p.inverse.data(),
                             p.labels.data());
  };
  const double eps = 1e-5;
  auto numeric = [&](double* x) {
    const double saved = *x;
    *x = saved + eps;
    const double up = loss();
    *x = saved - eps;
    const double down = loss();
    *x = saved;
    return (up - down) / (2 * eps);
  };
  auto expect_close = [](double analytic, double fd, const std::string& what) {
    const double tol = 1e-6 * std::max(std::abs(analytic), std::abs(fd)) + 1e-9;
    EXPECT_NEAR(analytic, fd, tol) << what;
  };

  // Embedding rows: first-order weight and embedding parts checked as groups.
  double max_w = 0, max_e = 0;
  for (int u = 0; u < p.U; ++u) {
    for (int j = 0; j < W; ++j) {
      const double a = row_grads[u * W + j];
      expect_close(a, numeric(&p.rows[u * W + j]),
                   "row " + std::to_string(u) + (j == 0 ? " w" : " e" + std::to_string(j - 1)));
      (j == 0 ? max_w : max_e) = std::max(j == 0 ? max_w : max_e, std::abs(a));
    }
  }
  EXPECT_GT(max_w, 1e-3) << "first-order gradients are all ~0: the check proves nothing";
  EXPECT_GT(max_e, 1e-3) << "embedding gradients are all ~0: the check proves nothing";
  for (int j = 0; j < W; ++j) EXPECT_EQ(row_grads[(p.U - 1) * W + j], 0.0) << "unused row";

  for (size_t t = 0; t < model.dense().size(); ++t) {
    auto& tensor = model.dense()[t];
    double max_g = 0;
    for (size_t i = 0; i < tensor.values.size(); ++i) {
      expect_close(dense_grads[t][i], numeric(&tensor.values[i]),
                   tensor.name + "[" + std::to_string(i) + "]");
      max_g = std::max(max_g, std::abs(dense_grads[t][i]));
    }
    EXPECT_GT(max_g, 1e-4) << tensor.name << " gradients are all ~0";
  }
}

INSTANTIATE_TEST_SUITE_P(HiddenLayers, GradientCheck,
                         ::testing::Values(std::vector<int>{8, 4}, std::vector<int>{6},
                                           std::vector<int>{}));

TEST(DeepFMModelTest, FloatMatchesDouble) {
  const DeepFMConfig c = SmallConfig({16, 8});
  DeepFMModelT<double> md(c);
  DeepFMModelT<float> mf(c);
  InitForTest(&md, 3);
  for (size_t t = 0; t < md.dense().size(); ++t) {
    for (size_t i = 0; i < md.dense()[t].values.size(); ++i) {
      mf.dense()[t].values[i] = static_cast<float>(md.dense()[t].values[i]);
    }
  }
  Problem<double> pd = MakeProblem<double>(c, 16, 9);
  Problem<float> pf = MakeProblem<float>(c, 16, 9);
  const int n = pd.U * c.row_width();
  std::vector<double> gd(n);
  std::vector<float> gf(n);
  const double ld = md.ForwardBackward(pd.B, pd.dense_x.data(), pd.rows.data(), pd.U,
                                       pd.inverse.data(), pd.labels.data(), gd.data());
  const float lf = mf.ForwardBackward(pf.B, pf.dense_x.data(), pf.rows.data(), pf.U,
                                      pf.inverse.data(), pf.labels.data(), gf.data());
  EXPECT_NEAR(lf, ld, 1e-5);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(gf[i], gd[i], 1e-5) << i;
  for (size_t t = 0; t < md.dense().size(); ++t) {
    for (size_t i = 0; i < md.dense()[t].grads.size(); ++i) {
      EXPECT_NEAR(mf.dense()[t].grads[i], md.dense()[t].grads[i], 1e-5) << md.dense()[t].name;
    }
  }
}

// BF16 variant of the gradient check. bf16 keeps 8 significant bits: one
// rounding to nearest has relative error at most u = 2^-9. How far such
// errors move a gradient depends on the problem's conditioning (sums of
// terms that cancel amplify them), so the tolerance is measured, not guessed:
// `sensitivity` is how far the exact (double) gradient moves when every input
// and weight is perturbed by a random relative error of size u, i.e. one
// bf16 rounding of everything. The bf16 model rounds at most 5 times along
// any path (DNN input, 2 hidden activations, 2 activation gradients), so its
// gradients must lie within 8x that of the exact ones, group by group; fp32
// must be 100x tighter than the sensitivity, so the test would notice a bf16
// path that silently ran in fp32 or lost more precision than bf16 does.
TEST(DeepFMModelTest, Bf16GradientsWithinBf16Precision) {
  DeepFMConfig c = SmallConfig({32, 16});
  c.num_fields = 8;
  const double u = 1.0 / 512;
  auto to_bf16 = [](double v) {
    return static_cast<double>(Bf16ToFloat(FloatToBf16(static_cast<float>(v))));
  };
  DeepFMModelT<double> exact(c);
  InitForTest(&exact, 5);
  Problem<double> pd = MakeProblem<double>(c, 64, 21);
  for (auto& t : exact.dense()) {
    for (double& v : t.values) v = to_bf16(v);
  }
  for (double& v : pd.rows) v = to_bf16(v);
  for (double& v : pd.dense_x) v = to_bf16(v);
  const int n = pd.U * c.row_width();
  const size_t W = c.row_width();

  // Gradient groups of a model's last step, in a fixed order.
  auto groups = [&](const auto& model, const auto& row_grads) {
    std::vector<std::vector<double>> out(2);
    for (size_t i = 0; i < row_grads.size(); ++i) out[i % W == 0 ? 1 : 0].push_back(row_grads[i]);
    for (const auto& t : model.dense()) out.emplace_back(t.grads.begin(), t.grads.end());
    return out;
  };
  auto dist = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s);
  };

  std::vector<double> g(n);
  exact.ForwardBackward(pd.B, pd.dense_x.data(), pd.rows.data(), pd.U, pd.inverse.data(),
                        pd.labels.data(), g.data());
  const auto g_exact = groups(exact, g);

  // Sensitivity: the largest move over a few random u-perturbations.
  std::vector<double> sensitivity(g_exact.size(), 0);
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> delta(-u, u);
  for (int trial = 0; trial < 4; ++trial) {
    DeepFMModelT<double> pert(c);
    Problem<double> pp = pd;
    for (size_t t = 0; t < exact.dense().size(); ++t) {
      for (size_t i = 0; i < exact.dense()[t].values.size(); ++i) {
        pert.dense()[t].values[i] = exact.dense()[t].values[i] * (1 + delta(rng));
      }
    }
    for (double& v : pp.rows) v *= 1 + delta(rng);
    for (double& v : pp.dense_x) v *= 1 + delta(rng);
    pert.ForwardBackward(pp.B, pp.dense_x.data(), pp.rows.data(), pp.U, pp.inverse.data(),
                         pp.labels.data(), g.data());
    const auto gp = groups(pert, g);
    for (size_t k = 0; k < gp.size(); ++k) sensitivity[k] = std::max(sensitivity[k], dist(gp[k], g_exact[k]));
  }

  double worst_ratio = 0;
  for (bool bf16 : {false, true}) {
    DeepFMConfig cf = c;
    cf.bf16 = bf16;
    DeepFMModelT<float> m(cf);
    for (size_t t = 0; t < m.dense().size(); ++t) {
      for (size_t i = 0; i < m.dense()[t].values.size(); ++i) {
        m.dense()[t].values[i] = static_cast<float>(exact.dense()[t].values[i]);
      }
    }
    std::vector<float> rows(pd.rows.begin(), pd.rows.end()), x(pd.dense_x.begin(), pd.dense_x.end()),
        labels(pd.labels.begin(), pd.labels.end()), gf(n);
    m.ForwardBackward(pd.B, x.data(), rows.data(), pd.U, pd.inverse.data(), labels.data(), gf.data());
    const auto got = groups(m, std::vector<double>(gf.begin(), gf.end()));
    bool some_group_moved = false;
    for (size_t k = 0; k < got.size(); ++k) {
      std::string name = "embedding rows";
      if (k == 1) name = "first-order weights";
      if (k >= 2) name = m.dense()[k - 2].name;
      const double err = dist(got[k], g_exact[k]);
      if (bf16) {
        worst_ratio = std::max(worst_ratio, err / sensitivity[k]);
        EXPECT_LE(err, 8 * sensitivity[k] + 1e-12) << name << ": bf16 error " << err
                                                   << ", sensitivity to one bf16 rounding " << sensitivity[k];
        some_group_moved |= err > 0.05 * sensitivity[k];
      } else {
        EXPECT_LE(err, 0.01 * sensitivity[k] + 1e-12) << name << ": fp32 error " << err;
      }
    }
    if (bf16) {
      EXPECT_TRUE(some_group_moved) << "bf16 mode changed nothing: is it rounding?";
      printf("bf16 gradient error / sensitivity to one bf16 rounding: at most %.2f\n", worst_ratio);
    }
  }
}

// The forward pass against numbers worked out by hand (and checked with a
// few lines of Python), independent of the code under test. The gradient
// check only proves forward and backward agree; this pins the model itself.
//
// 2 fields, D = 2, 1 dense feature, one hidden layer of 2 units.
// Unique rows [w, e0, e1]:  r0 = [0.5, 1, 2], r1 = [-0.25, 3, -1], r2 = [1, 0.5, 0.5]
// Batch: row 0 uses (r0, r1) with x = 1, label 1; row 1 uses (r2, r0) with x = 0, label 0.
// Dense: w_dense = 2, linear bias = 0.125,
//   layer0 kernel [5 x 2] = [[.1, -.2], [.2, .1], [-.1, .3], [.4, -.5], [.5, .25]],
//   layer0 bias = [.2, -1], out kernel = [1.5, -.5], out bias = -.25.
// Row 0: linear = .125 + .5 - .25 + 2*1 = 2.375
//        fm = e(r0).e(r1) = 1*3 + 2*(-1) = 1
//        DNN input [1, 2, 3, -1, 1]: pre = [.3 + .2, 1.65 - 1] = [.5, .65], both > 0
//        dnn = .5*1.5 + .65*(-.5) - .25 = .175
//        logit = 2.375 + 1 + .175 = 3.55
// Row 1: linear = .125 + 1 + .5 + 2*0 = 1.625
//        fm = e(r2).e(r0) = .5*1 + .5*2 = 1.5
//        DNN input [.5, .5, 1, 2, 0]: pre = [.85 + .2, -.75 - 1] = [1.05, -1.75] -> ReLU [1.05, 0]
//        dnn = 1.05*1.5 - .25 = 1.325
//        logit = 1.625 + 1.5 + 1.325 = 4.45
// p = sigmoid(logit) = [0.9720774262159271, 0.9884562475160777]
// loss = (log(1 + e^-3.55) + log(1 + e^4.45)) / 2 = 2.244965359967736
template <typename Model>
void SetHandWorkedDense(Model* m) {
  using T = typename Model::Scalar;
  auto set = [&](const char* name, std::vector<T> v) {
    auto* t = m->FindDense(name);
    ASSERT_NE(t, nullptr) << name;
    ASSERT_EQ(t->values.size(), v.size()) << name;
    t->values = v;
  };
  set("linear/w_dense", {2});
  set("linear/bias", {0.125});
  set("dnn/layer0/kernel", {0.1, -0.2, 0.2, 0.1, -0.1, 0.3, 0.4, -0.5, 0.5, 0.25});
  set("dnn/layer0/bias", {0.2, -1});
  set("dnn/out/kernel", {1.5, -0.5});
  set("dnn/out/bias", {-0.25});
}

template <typename Model>
void CheckHandWorkedForward(Model* m, double tol) {
  using T = typename Model::Scalar;
  SetHandWorkedDense(m);
  const std::vector<T> rows = {0.5, 1, 2, -0.25, 3, -1, 1, 0.5, 0.5};
  const std::vector<int32_t> inverse = {0, 1, 2, 0};
  const std::vector<T> x = {1, 0}, labels = {1, 0};
  std::vector<T> probs(2);
  m->Predict(2, x.data(), rows.data(), 3, inverse.data(), probs.data());
  EXPECT_NEAR(probs[0], 0.9720774262159271, tol);
  EXPECT_NEAR(probs[1], 0.9884562475160777, tol);
  EXPECT_NEAR(m->ForwardLoss(2, x.data(), rows.data(), 3, inverse.data(), labels.data()),
              2.244965359967736, tol * 10);
}

DeepFMConfig HandWorkedConfig() {
  DeepFMConfig c;
  c.num_fields = 2;
  c.num_dense = 1;
  c.embedding_dim = 2;
  c.hidden_units = {2};
  return c;
}

TEST(DeepFMModelTest, ForwardMatchesAHandWorkedExample) {
  DeepFMModelT<double> m(HandWorkedConfig());
  CheckHandWorkedForward(&m, 1e-12);
}

// The float model on each DNN kernel path; a path this CPU lacks is skipped.
class HandWorkedOnPath : public ::testing::TestWithParam<std::string> {};

TEST_P(HandWorkedOnPath, FloatForwardMatches) {
  dnn::Isa isa;
  ASSERT_TRUE(dnn::ParseIsa(GetParam(), &isa));
  if (dnn::KernelsFor(isa) == nullptr) GTEST_SKIP() << "this CPU cannot run " << GetParam();
  DeepFMConfig c = HandWorkedConfig();
  c.dnn_isa = GetParam();
  DeepFMModel m(c);
  CheckHandWorkedForward(&m, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(EveryPath, HandWorkedOnPath, ::testing::Values("generic", "avx2", "avx512"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(DeepFMModelTest, PredictAgreesWithLossAndIsStableForLargeLogits) {
  const DeepFMConfig c = SmallConfig();
  DeepFMModelT<double> model(c);
  InitForTest(&model, 4);
  Problem<double> p = MakeProblem<double>(c, 8, 2);
  std::vector<double> probs(p.B);
  model.Predict(p.B, p.dense_x.data(), p.rows.data(), p.U, p.inverse.data(), probs.data());
  double bce = 0;
  for (int b = 0; b < p.B; ++b) {
    bce -= p.labels[b] ? std::log(probs[b]) : std::log1p(-probs[b]);
  }
  EXPECT_NEAR(model.ForwardLoss(p.B, p.dense_x.data(), p.rows.data(), p.U, p.inverse.data(),
                                p.labels.data()),
              bce / p.B, 1e-12);

  // A huge bias: probabilities saturate, the loss stays finite and exact.
  DeepFMModel mf(c);
  mf.InitDense(1);
  mf.FindDense("linear/bias")->values[0] = 200.0f;
  Problem<float> pf = MakeProblem<float>(c, 2, 2);
  pf.labels = {0.0f, 1.0f};
  std::vector<float> grads(pf.U * c.row_width());
  const float loss = mf.ForwardBackward(pf.B, pf.dense_x.data(), pf.rows.data(), pf.U,
                                        pf.inverse.data(), pf.labels.data(), grads.data());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(loss, 90.0f);  // ~ (200 + logit rest) / 2
  for (float g : grads) EXPECT_TRUE(std::isfinite(g));
}

TEST(DeepFMModelTest, DenseSpecsAndDeterministicInit) {
  const DeepFMConfig defaults;
  const std::vector<DenseTensorSpec> specs = DeepFMDenseSpecs(defaults);
  std::vector<std::string> names;
  int64_t kernel_params = 0;
  for (const auto& s : specs) {
    names.push_back(s.name);
    if (s.name.find("/kernel") != std::string::npos) kernel_params += s.size();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"linear/w_dense", "linear/bias", "dnn/layer0/kernel",
                                             "dnn/layer0/bias", "dnn/layer1/kernel",
                                             "dnn/layer1/bias", "dnn/layer2/kernel",
                                             "dnn/layer2/bias", "dnn/out/kernel", "dnn/out/bias"}));
  EXPECT_EQ(specs[2].shape, (std::vector<int64_t>{429, 1024}));
  EXPECT_EQ(specs[8].shape, (std::vector<int64_t>{32, 1}));
  EXPECT_EQ(kernel_params, 709664);  // DESIGN.md section 3

  // Same (seed, name, shape) -> same values, whatever the rest of the model.
  DeepFMModel a(SmallConfig({8, 4})), b(SmallConfig({8, 6})), c(SmallConfig({8, 4}));
  a.InitDense(42);
  b.InitDense(42);
  c.InitDense(43);
  EXPECT_EQ(a.FindDense("dnn/layer0/kernel")->values, b.FindDense("dnn/layer0/kernel")->values);
  EXPECT_NE(a.FindDense("dnn/layer0/kernel")->values, c.FindDense("dnn/layer0/kernel")->values);
  EXPECT_NE(a.FindDense("dnn/layer1/kernel")->values, b.FindDense("dnn/layer1/kernel")->values);
  for (const auto& t : a.dense()) {
    const bool kernel = t.name.find("/kernel") != std::string::npos;
    const double limit = kernel ? std::sqrt(6.0 / (t.shape[0] + t.shape[1])) : 0.0;
    double max_abs = 0;
    for (float v : t.values) {
      EXPECT_LE(std::abs(v), limit) << t.name;
      max_abs = std::max(max_abs, double(std::abs(v)));
    }
    if (kernel) {
      EXPECT_GT(max_abs, 0.5 * limit) << t.name;
    }
  }
  EXPECT_EQ(a.FindDense("no/such"), nullptr);
}

// A tiny planted CTR problem, learned with plain SGD applied right here.
TEST(DeepFMModelTest, LearnsPlantedProblem) {
  DeepFMConfig c;
  c.num_fields = 4;
  c.num_dense = 2;
  c.embedding_dim = 4;
  c.hidden_units = {16, 8};
  const int F = c.num_fields, ND = c.num_dense, W = c.row_width();
  const int kVocab = 25;

  std::mt19937_64 rng(2026);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::vector<std::vector<double>> effect(F, std::vector<double>(kVocab));
  for (auto& e : effect)
    for (double& v : e) v = 1.8 * normal(rng);
  std::vector<double> sign0(kVocab), sign1(kVocab);
  for (int v = 0; v < kVocab; ++v) {
    sign0[v] = uniform(rng) < 0.5 ? -1 : 1;
    sign1[v] = uniform(rng) < 0.5 ? -1 : 1;
  }

  struct Data {
    std::vector<uint64_t> keys;
    std::vector<float> dense, labels, truth;
  };
  auto make = [&](int n) {
    Data d;
    for (int i = 0; i < n; ++i) {
      double z = -0.5;
      int v[4];
      for (int f = 0; f < F; ++f) {
        v[f] = static_cast<int>(uniform(rng) * kVocab);
        z += effect[f][v[f]];
        d.keys.push_back(FeatureKey(f, std::to_string(v[f])));
      }
      z += 1.5 * sign0[v[0]] * sign1[v[1]];
      const double x0 = uniform(rng) * 3, x1 = uniform(rng) * 3;
      z += 1.2 * (x0 - 1.5);
      d.dense.push_back(static_cast<float>(x0));
      d.dense.push_back(static_cast<float>(x1));
      const double prob = 1 / (1 + std::exp(-z));
      d.truth.push_back(static_cast<float>(prob));
      d.labels.push_back(uniform(rng) < prob ? 1.0f : 0.0f);
    }
    return d;
  };
  const Data train = make(20000), eval = make(5000);
  const double oracle = ComputeAuc(eval.truth.data(), eval.labels.data(), 5000);
  ASSERT_GT(oracle, 0.92) << "the planted problem itself is too noisy";

  DeepFMModel model(c);
  model.InitDense(7);
  std::unordered_map<uint64_t, std::vector<float>> table;
  auto row = [&](uint64_t key) -> std::vector<float>& {
    auto it = table.find(key);
    if (it == table.end()) {
      it = table.emplace(key, std::vector<float>(W)).first;
      InitRowNormal(key, 7, 0.01f, it->second.data(), W);
    }
    return it->second;
  };

  const int B = 64;
  const float lr = 0.5f;
  std::vector<uint64_t> uniq;
  std::vector<int32_t> inverse;
  std::vector<float> rows, grads;
  KeyDedup dedup;
  auto gather = [&](const std::vector<uint64_t>& keys) {
    dedup.Run(keys.data(), keys.size(), &uniq, &inverse);
    rows.resize(uniq.size() * W);
    for (size_t u = 0; u < uniq.size(); ++u) {
      const std::vector<float>& r = row(uniq[u]);
      std::copy(r.begin(), r.end(), rows.begin() + u * W);
    }
  };
  float first_loss = 0, last_loss = 0;
  for (int epoch = 0; epoch < 10; ++epoch) {
    for (int start = 0; start + B <= 20000; start += B) {
      std::vector<uint64_t> keys(train.keys.begin() + size_t(start) * F,
                                 train.keys.begin() + size_t(start + B) * F);
      gather(keys);
      grads.resize(rows.size());
      const float loss = model.ForwardBackward(B, &train.dense[size_t(start) * ND], rows.data(),
                                               static_cast<int>(uniq.size()), inverse.data(),
                                               &train.labels[start], grads.data());
      if (epoch == 0 && start == 0) first_loss = loss;
      last_loss = loss;
      for (size_t u = 0; u < uniq.size(); ++u) {
        std::vector<float>& r = row(uniq[u]);
        for (int j = 0; j < W; ++j) r[j] -= lr * grads[u * W + j];
      }
      for (auto& t : model.dense()) {
        for (size_t i = 0; i < t.values.size(); ++i) t.values[i] -= 0.1f * t.grads[i];
      }
    }
  }

  EvalAccumulator acc;
  std::vector<float> probs(B);
  for (int start = 0; start + B <= 5000; start += B) {
    std::vector<uint64_t> keys(eval.keys.begin() + size_t(start) * F,
                               eval.keys.begin() + size_t(start + B) * F);
    gather(keys);
    model.Predict(B, &eval.dense[size_t(start) * ND], rows.data(), static_cast<int>(uniq.size()),
                  inverse.data(), probs.data());
    acc.Add(probs.data(), &eval.labels[start], B);
  }
  EXPECT_GT(acc.Auc(), 0.9) << "oracle AUC " << oracle << ", loss " << first_loss << " -> "
                            << last_loss;
  EXPECT_GT(acc.Auc(), oracle - 0.03);
  std::printf("planted problem: eval AUC %.4f (oracle %.4f), log loss %.4f\n", acc.Auc(), oracle,
              acc.LogLoss());
}

}  // namespace
}  // namespace deepfm

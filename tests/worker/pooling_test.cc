#include "worker/pooling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/hash.h"
#include "worker/data_reader.h"
#include "worker/deepfm_model.h"
#include "worker/dnn_kernels.h"
#include "worker/key_dedup.h"

namespace deepfm {
namespace {

// One table looked up by a list of each combiner and a single value that
// drops empties, and a second single-valued table: every pooling case.
constexpr char kSpec[] = R"pb(
  name: "pooling"
  layout { separator: "," }
  columns { name: "y" label { } }
  columns { name: "x" numeric { } }
  columns { name: "c" categorical { drop_empty: true } }
  columns { name: "l_mean" list { combiner: MEAN } }
  columns { name: "l_sum" list { combiner: SUM } }
  columns { name: "l_sqrtn" list { combiner: SQRTN } }
  columns { name: "d" categorical { } }
  tables { name: "shared" dim: 3 columns: ["c", "l_mean", "l_sum", "l_sqrtn"] }
  tables { name: "other" dim: 3 columns: "d" }
)pb";

constexpr char kRows[] =
    "1,0.5,a,a;b;c,b;b,a;c;d;e,p\n"
    "0,-1,,d,a;e;e,b,q\n"         // c empty: dropped, a zero feature
    "1,2,e,c;c,d,a;b,p\n"
    "0,0.25,b,e;a;b;c;d,c;a,e,r\n";

struct Fixture {
  FeatureSpecPtr spec;
  Batch batch;
  std::vector<std::vector<uint64_t>> uniq;
  std::vector<std::vector<int32_t>> inverse;
  std::vector<std::vector<double>> rows;

  Fixture() {
    EXPECT_TRUE(FeatureSpec::Parse(kSpec, "pooling", &spec).ok());
    EXPECT_EQ(ParseText(*spec, kRows, ',', &batch), 0);
    EXPECT_EQ(batch.size, 4);
    KeyDedup dedup;
    std::mt19937 rng(5);
    std::normal_distribution<double> normal(0, 0.5);
    for (const TableKeys& t : batch.tables) {
      uniq.emplace_back();
      inverse.emplace_back();
      dedup.Run(t.keys.data(), t.keys.size(), &uniq.back(), &inverse.back());
      rows.emplace_back(uniq.back().size() * 4);
      for (double& v : rows.back()) v = normal(rng);
    }
  }
  std::vector<TableRows<double>> Rows() const {
    std::vector<TableRows<double>> r(rows.size());
    for (size_t t = 0; t < rows.size(); ++t) r[t] = {rows[t].data(), inverse[t].data()};
    return r;
  }
};

// The weightless linear part's input: each row's keys over every feature,
// a dropped empty value counting none and each list token one.
TEST(PoolingTest, CountsEachRowsKeysForTheWeightlessLinearPart) {
  Fixture fx;
  PoolingT<double> pool(*fx.spec, 4);
  DeepFMConfig c;
  c.num_fields = 5;
  c.num_dense = 1;
  c.embedding_dim = 3;
  c.hidden_units = {4};
  c.linear = DeepFMConfig::Linear::kWeightless;
  DeepFMModelT<double> model(c);
  const PooledLayout<double> out = model.BeginBatch(4);
  ASSERT_NE(out.row_keys, nullptr);
  std::fill(out.row_keys, out.row_keys + 4, -1.0);
  pool.Forward(fx.batch, fx.Rows(), out);
  // c + l_mean + l_sum + l_sqrtn + d, per kRows line.
  EXPECT_EQ(out.row_keys[0], 1 + 3 + 2 + 4 + 1);
  EXPECT_EQ(out.row_keys[1], 0 + 1 + 3 + 1 + 1);
  EXPECT_EQ(out.row_keys[2], 1 + 2 + 1 + 2 + 1);
  EXPECT_EQ(out.row_keys[3], 1 + 5 + 2 + 1 + 1);
  // model.linear_columns narrows the count (train.py leaves its history
  // lists out of the wide input); a column it names must exist.
  FeatureSpecPtr narrow;
  const std::string text = std::string(kSpec) + "model { linear_columns: [\"c\", \"d\"] }";
  ASSERT_TRUE(FeatureSpec::Parse(text, "narrow", &narrow).ok());
  PoolingT<double> narrow_pool(*narrow, 4);
  narrow_pool.Forward(fx.batch, fx.Rows(), out);
  EXPECT_EQ(out.row_keys[0], 2);
  EXPECT_EQ(out.row_keys[1], 1) << "c is empty and dropped";
  FeatureSpecPtr bad;
  const Status s = FeatureSpec::Parse(std::string(kSpec) + "model { linear_columns: \"x\" }", "bad", &bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("linear_columns names x"), std::string::npos) << s.message();
  // A learned linear part needs no counts.
  c.linear = DeepFMConfig::Linear::kLearned;
  DeepFMModelT<double> learned(c);
  EXPECT_EQ(learned.BeginBatch(4).row_keys, nullptr);
}

TEST(PoolingTest, CombinesEachFeaturesRows) {
  Fixture fx;
  PoolingT<double> pool(*fx.spec, 4);
  ASSERT_EQ(pool.num_features(), 5);
  std::vector<double> pooled(4 * 5 * 4, std::nan(""));  // every value must be written
  pool.Forward(fx.batch, fx.Rows(), pooled.data());
  // Row 0: l_mean over a, b, c; l_sum over b, b; l_sqrtn over a, c, d, e.
  auto row_of = [&](int table, const std::string& token, int seed) {
    const uint64_t key = FeatureKey(seed, token);
    for (size_t u = 0; u < fx.uniq[table].size(); ++u) {
      if (fx.uniq[table][u] == key) return fx.rows[table].data() + u * 4;
    }
    ADD_FAILURE() << token;
    return fx.rows[table].data();
  };
  for (int j = 0; j < 4; ++j) {
    const double a = row_of(0, "a", 0)[j], b = row_of(0, "b", 0)[j], c = row_of(0, "c", 0)[j];
    const double d = row_of(0, "d", 0)[j], e = row_of(0, "e", 0)[j];
    EXPECT_EQ(pooled[0 * 4 + j], a) << "one key copies its row";
    EXPECT_NEAR(pooled[1 * 4 + j], (a + b + c) / 3, 1e-15);
    EXPECT_NEAR(pooled[2 * 4 + j], b + b, 1e-15);
    EXPECT_NEAR(pooled[3 * 4 + j], (a + c + d + e) / 2, 1e-15);
    EXPECT_EQ(pooled[4 * 4 + j], row_of(1, "p", 1)[j]);
    EXPECT_EQ(pooled[(5 + 0) * 4 + j], 0.0) << "row 1's empty c pools to zero";
  }
}

// The model's loss as a function of every unique row, through the pooling:
// the analytic row gradients against central differences, per combiner.
TEST(PoolingTest, GradientsMatchFiniteDifferencesForEveryCombiner) {
  Fixture fx;
  DeepFMConfig config;
  config.num_fields = fx.spec->num_features();
  config.num_dense = fx.spec->num_numeric();
  config.embedding_dim = fx.spec->embedding_dim();
  config.hidden_units = {6, 4};
  DeepFMModelT<double> model(config);
  model.InitDense(9);
  PoolingT<double> pool(*fx.spec, config.row_width());
  const int B = fx.batch.size;
  std::vector<double> x(fx.batch.dense.begin(), fx.batch.dense.end());
  std::vector<double> labels(fx.batch.labels.begin(), fx.batch.labels.end());
  std::vector<double> pooled(static_cast<size_t>(B) * config.num_fields * config.row_width());
  std::vector<double> d_pooled(pooled.size());
  auto loss = [&] {
    pool.Forward(fx.batch, fx.Rows(), pooled.data());
    return model.ForwardLossPooled(B, x.data(), pooled.data(), labels.data());
  };
  pool.Forward(fx.batch, fx.Rows(), pooled.data());
  model.ForwardBackwardPooled(B, x.data(), pooled.data(), labels.data(), d_pooled.data());
  std::vector<std::vector<double>> grads(fx.rows.size());
  std::vector<double*> gp;
  std::vector<size_t> nu;
  for (size_t t = 0; t < fx.rows.size(); ++t) {
    grads[t].assign(fx.rows[t].size(), 123.0);  // Backward must zero them
    gp.push_back(grads[t].data());
    nu.push_back(fx.uniq[t].size());
  }
  pool.Backward(fx.batch, fx.Rows(), d_pooled.data(), gp, nu);
  int checked = 0;
  for (size_t t = 0; t < fx.rows.size(); ++t) {
    for (size_t i = 0; i < fx.rows[t].size(); ++i) {
      const double saved = fx.rows[t][i];
      const double h = 1e-6;
      fx.rows[t][i] = saved + h;
      const double up = loss();
      fx.rows[t][i] = saved - h;
      const double down = loss();
      fx.rows[t][i] = saved;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grads[t][i], numeric, 1e-7 + 1e-5 * std::abs(numeric))
          << "table " << t << " row " << i / 4 << " element " << i % 4;
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>((fx.uniq[0].size() + fx.uniq[1].size()) * 4));
}

// The float pooling on every ISA path this CPU has against the double
// reference: the same sums (no fused multiply-add), so equal to float
// rounding, forward and backward.
TEST(PoolingTest, EveryIsaPathMatchesTheReference) {
  Fixture fx;
  const int W = 4, B = fx.batch.size, F = 5;
  PoolingT<double> ref(*fx.spec, W);
  std::vector<double> ref_pooled(size_t(B) * F * W), d(ref_pooled.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = std::sin(0.7 * i);
  ref.Forward(fx.batch, fx.Rows(), ref_pooled.data());
  std::vector<std::vector<double>> ref_grads(2);
  std::vector<double*> rg;
  std::vector<size_t> nu;
  for (int t = 0; t < 2; ++t) {
    ref_grads[t].resize(fx.rows[t].size());
    rg.push_back(ref_grads[t].data());
    nu.push_back(fx.uniq[t].size());
  }
  ref.Backward(fx.batch, fx.Rows(), d.data(), rg, nu);
  int paths = 0;
  for (dnn::Isa isa : {dnn::Isa::kGeneric, dnn::Isa::kAvx2, dnn::Isa::kAvx512}) {
    const dnn::Kernels* k = dnn::KernelsFor(isa);
    if (k == nullptr) {
      printf("PoolingTest: this CPU has no %s path; not checked\n", dnn::IsaName(isa));
      continue;
    }
    ++paths;
    SCOPED_TRACE(k->name);
    Pooling pool(*fx.spec, W, k);
    std::vector<std::vector<float>> rows(2), grads(2);
    std::vector<TableRows<float>> tr(2);
    std::vector<float*> gp;
    for (int t = 0; t < 2; ++t) {
      rows[t].assign(fx.rows[t].begin(), fx.rows[t].end());
      grads[t].assign(rows[t].size(), 7.0f);
      tr[t] = {rows[t].data(), fx.inverse[t].data()};
      gp.push_back(grads[t].data());
    }
    std::vector<float> pooled(ref_pooled.size(), std::nanf(""));
    pool.Forward(fx.batch, tr, pooled.data());
    for (size_t i = 0; i < pooled.size(); ++i) EXPECT_NEAR(pooled[i], ref_pooled[i], 1e-5) << i;
    std::vector<float> df(d.begin(), d.end());
    pool.Backward(fx.batch, tr, df.data(), gp, nu);
    for (int t = 0; t < 2; ++t) {
      for (size_t i = 0; i < grads[t].size(); ++i) {
        EXPECT_NEAR(grads[t][i], ref_grads[t][i], 1e-5) << "table " << t << " " << i;
      }
    }
  }
  EXPECT_GE(paths, 1);
}

}  // namespace
}  // namespace deepfm

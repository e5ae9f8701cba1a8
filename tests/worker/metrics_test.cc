#include "worker/metrics.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace deepfm {
namespace {

// Definition of AUC: P(score_pos > score_neg) + 1/2 P(equal), by brute force.
double PairwiseAuc(const std::vector<float>& s, const std::vector<float>& y) {
  double wins = 0;
  int64_t pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (y[i] < 0.5f) continue;
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[j] > 0.5f) continue;
      ++pairs;
      wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  return wins / pairs;
}

TEST(AucTest, HandComputedCase) {
  // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs won.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(ComputeAuc(s.data(), y.data(), 4), 0.75);
}

TEST(AucTest, TiesCountHalf) {
  // Pairs: (0.5 vs 0.2) win, (0.5 vs 0.5) half, (0.9 vs both) two wins: 3.5 / 4.
  const std::vector<float> s = {0.2f, 0.5f, 0.5f, 0.9f};
  const std::vector<float> y = {0, 1, 0, 1};
  EXPECT_DOUBLE_EQ(ComputeAuc(s.data(), y.data(), 4), 0.875);
  // All tied: exactly one half, whatever the order.
  const std::vector<float> t = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
  const std::vector<float> z = {1, 0, 0, 1, 0};
  EXPECT_DOUBLE_EQ(ComputeAuc(t.data(), z.data(), 5), 0.5);
}

TEST(AucTest, PerfectAndReversed) {
  const std::vector<float> s = {0.1f, 0.2f, 0.7f, 0.9f};
  const std::vector<float> y = {0, 0, 1, 1};
  const std::vector<float> r = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(ComputeAuc(s.data(), y.data(), 4), 1.0);
  EXPECT_DOUBLE_EQ(ComputeAuc(s.data(), r.data(), 4), 0.0);
}

TEST(AucTest, MatchesPairwiseDefinitionWithManyTies) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> bucket(0, 9);  // only 10 distinct scores
  std::bernoulli_distribution coin(0.3);
  std::vector<float> s(500), y(500);
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = bucket(rng) * 0.1f;
    y[i] = coin(rng) ? 1.0f : 0.0f;
  }
  EXPECT_NEAR(ComputeAuc(s.data(), y.data(), 500), PairwiseAuc(s, y), 1e-12);
}

TEST(AucTest, UndefinedForOneClass) {
  const std::vector<float> s = {0.1f, 0.2f};
  const std::vector<float> y = {1, 1};
  EXPECT_TRUE(std::isnan(ComputeAuc(s.data(), y.data(), 2)));
  EXPECT_TRUE(std::isnan(ComputeAuc(s.data(), y.data(), 0)));
}

TEST(AucTest, NanScoresGiveNan) {
  // A NaN score has no rank; AUC must say it cannot be computed rather than
  // return a number from an ill-defined sort.
  const std::vector<float> s = {0.1f, std::nanf(""), 0.8f, 0.3f};
  const std::vector<float> y = {0, 1, 1, 0};
  EXPECT_TRUE(std::isnan(ComputeAuc(s.data(), y.data(), 4)));
  EvalAccumulator acc;
  acc.Add(s.data(), y.data(), 4);
  EXPECT_TRUE(std::isnan(acc.Auc()));
}

TEST(LogLossTest, HandComputedAndClipped) {
  const std::vector<float> p = {0.8f, 0.4f};
  const std::vector<float> y = {1, 0};
  EXPECT_NEAR(ComputeLogLoss(p.data(), y.data(), 2), -(std::log(0.8) + std::log(0.6)) / 2, 1e-6);
  // A certain mistake costs -log(1e-7), not infinity.
  const std::vector<float> wrong = {0.0f, 1.0f};
  const std::vector<float> wy = {1, 0};
  EXPECT_NEAR(ComputeLogLoss(wrong.data(), wy.data(), 2), -std::log(1e-7), 1e-6);
}

TEST(AccuracyTest, ThresholdAtHalf) {
  const std::vector<float> p = {0.9f, 0.5f, 0.51f, 0.1f};
  const std::vector<float> y = {1, 1, 0, 0};
  // 0.5 predicts no click: only rows 0 and 3 are right.
  EXPECT_DOUBLE_EQ(ComputeAccuracy(p.data(), y.data(), 4), 0.5);
}

TEST(EvalAccumulatorTest, StreamingEqualsWholeAndMerges) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> p(1000), y(1000);
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] = u(rng);
    y[i] = u(rng) < p[i] ? 1.0f : 0.0f;
  }
  EvalAccumulator acc, first, second;
  for (int i = 0; i < 1000; i += 37) acc.Add(&p[i], &y[i], std::min(37, 1000 - i));
  first.Add(p.data(), y.data(), 400);
  second.Add(p.data() + 400, y.data() + 400, 600);
  first.Merge(second);
  for (const EvalAccumulator* a : {&acc, &first}) {
    EXPECT_EQ(a->count(), 1000);
    EXPECT_DOUBLE_EQ(a->Auc(), ComputeAuc(p.data(), y.data(), 1000));
    EXPECT_NEAR(a->LogLoss(), ComputeLogLoss(p.data(), y.data(), 1000), 1e-12);
    EXPECT_DOUBLE_EQ(a->Accuracy(), ComputeAccuracy(p.data(), y.data(), 1000));
  }
  EXPECT_GT(acc.Auc(), 0.7);  // labels were drawn from p
  acc.Clear();
  EXPECT_EQ(acc.count(), 0);
  EXPECT_TRUE(std::isnan(acc.LogLoss()));
}

}  // namespace
}  // namespace deepfm

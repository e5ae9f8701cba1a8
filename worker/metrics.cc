#include "worker/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace deepfm {
namespace {

constexpr double kLogLossEps = 1e-7;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

inline bool IsPositive(float label) { return label > 0.5f; }

inline double RowLogLoss(float prob, float label) {
  const double p = std::clamp(static_cast<double>(prob), kLogLossEps, 1.0 - kLogLossEps);
  return IsPositive(label) ? -std::log(p) : -std::log1p(-p);
}

inline bool RowCorrect(float prob, float label) { return (prob > 0.5f) == IsPositive(label); }

}  // namespace

double ComputeAuc(const float* scores, const float* labels, int64_t n) {
  // NaN would break the sort's ordering; a NaN score has no rank anyway.
  if (std::any_of(scores, scores + n, [](float s) { return std::isnan(s); })) return kNaN;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [scores](int64_t a, int64_t b) { return scores[a] < scores[b]; });
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    int64_t group_positives = 0;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      group_positives += IsPositive(labels[order[j]]);
      ++j;
    }
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);
    positive_rank_sum += average_rank * group_positives;
    positives += group_positives;
    i = j;
  }
  const int64_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

double ComputeLogLoss(const float* probs, const float* labels, int64_t n) {
  if (n == 0) return kNaN;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += RowLogLoss(probs[i], labels[i]);
  return sum / static_cast<double>(n);
}

double ComputeAccuracy(const float* probs, const float* labels, int64_t n) {
  if (n == 0) return kNaN;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += RowCorrect(probs[i], labels[i]);
  return static_cast<double>(correct) / static_cast<double>(n);
}

void EvalAccumulator::Add(const float* probs, const float* labels, int n) {
  probs_.insert(probs_.end(), probs, probs + n);
  labels_.insert(labels_.end(), labels, labels + n);
  for (int i = 0; i < n; ++i) {
    log_loss_sum_ += RowLogLoss(probs[i], labels[i]);
    correct_ += RowCorrect(probs[i], labels[i]);
    positives_ += IsPositive(labels[i]);
  }
}

void EvalAccumulator::Merge(const EvalAccumulator& other) {
  probs_.insert(probs_.end(), other.probs_.begin(), other.probs_.end());
  labels_.insert(labels_.end(), other.labels_.begin(), other.labels_.end());
  log_loss_sum_ += other.log_loss_sum_;
  correct_ += other.correct_;
  positives_ += other.positives_;
}

void EvalAccumulator::Clear() { *this = EvalAccumulator(); }

double EvalAccumulator::Auc() const { return ComputeAuc(probs_.data(), labels_.data(), count()); }

double EvalAccumulator::LogLoss() const {
  return count() == 0 ? kNaN : log_loss_sum_ / static_cast<double>(count());
}

double EvalAccumulator::Accuracy() const {
  return count() == 0 ? kNaN : static_cast<double>(correct_) / static_cast<double>(count());
}

double EvalAccumulator::PositiveRate() const {
  return count() == 0 ? kNaN : static_cast<double>(positives_) / static_cast<double>(count());
}

}  // namespace deepfm

// Evaluation metrics for click prediction: exact ROC AUC, log loss, accuracy.
#pragma once

#include <cstdint>
#include <vector>

namespace deepfm {

// Exact ROC AUC of `scores` against `labels` (> 0.5 is a positive): the
// Mann-Whitney statistic with tied scores given their average rank, so a tie
// between a positive and a negative counts one half. O(n log n). Returns NaN
// when either class is absent, because AUC is undefined there.
double ComputeAuc(const float* scores, const float* labels, int64_t n);

// Mean binary cross-entropy with probabilities clipped to [eps, 1 - eps]
// (eps = 1e-7, as TensorFlow's log_loss), so a confident mistake costs a
// large finite amount instead of infinity. NaN for n == 0.
double ComputeLogLoss(const float* probs, const float* labels, int64_t n);

// Fraction of rows where (prob > 0.5) equals (label > 0.5); a probability of
// exactly 0.5 predicts no click. NaN for n == 0.
double ComputeAccuracy(const float* probs, const float* labels, int64_t n);

// Streaming evaluation: keeps every (prob, label) pair, 8 bytes a row, since
// exact AUC needs them all; log loss and accuracy are summed on the way.
class EvalAccumulator {
 public:
  void Add(const float* probs, const float* labels, int n);
  // Appends everything `other` has seen (e.g. from another worker).
  void Merge(const EvalAccumulator& other);
  void Clear();

  double Auc() const;
  double LogLoss() const;
  double Accuracy() const;
  int64_t count() const { return static_cast<int64_t>(probs_.size()); }
  // Mean label: the empirical click rate.
  double PositiveRate() const;

 private:
  std::vector<float> probs_;
  std::vector<float> labels_;
  double log_loss_sum_ = 0;
  int64_t correct_ = 0;
  int64_t positives_ = 0;
};

}  // namespace deepfm

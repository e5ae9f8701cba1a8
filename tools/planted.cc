#include "tools/planted.h"

#include <algorithm>
#include <numeric>

namespace deepfm::planted {

double Auc(const std::vector<double>& score, const std::vector<uint8_t>& label) {
  const int64_t n = static_cast<int64_t>(score.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] < score[b]; });
  double rank_sum = 0;
  int64_t positives = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i, group_positives = 0;
    for (; j < n && score[order[j]] == score[order[i]]; ++j) group_positives += label[order[j]];
    rank_sum += 0.5 * double(i + 1 + j) * group_positives;
    positives += group_positives;
    i = j;
  }
  const double p = double(positives), q = double(n - positives);
  return (positives == 0 || positives == n) ? std::nan("") : (rank_sum - p * (p + 1) / 2) / (p * q);
}

double LogLoss(const std::vector<double>& prob, const std::vector<uint8_t>& label) {
  double sum = 0;
  for (size_t i = 0; i < prob.size(); ++i) {
    const double p = std::clamp(prob[i], 1e-7, 1.0 - 1e-7);
    sum -= label[i] ? std::log(p) : std::log1p(-p);
  }
  return prob.empty() ? std::nan("") : sum / double(prob.size());
}

}  // namespace deepfm::planted

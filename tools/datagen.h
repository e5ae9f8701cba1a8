// Synthetic Criteo-like data with a known answer. Rows follow the DeepRec
// model-zoo schema (label, I1..I13, C1..C26) and their clicks are drawn from
// a planted model: logit = bias + per-(field, value) effects + a few pairwise
// field interactions + dense effects, with the bias calibrated to a target
// click rate. Because the true click probability of every row is known, the
// generator reports the oracle AUC (the best AUC any model can reach on the
// eval split), which tells how close a trained model got.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm {

struct DataGenOptions {
  enum Format { kCsv, kTsv };

  int64_t train_rows = 500000;
  int64_t eval_rows = 100000;
  uint64_t seed = 2026;
  // Created if missing. CSV writes train.csv / eval.csv (comma separated, as
  // DeepRec's model zoo); TSV writes train.txt / eval.txt (tab separated, as
  // the original Criteo release).
  std::string out_dir;
  Format format = kCsv;
  // Values of each categorical field are Zipf(zipf_s) over its cardinality.
  double zipf_s = 1.1;
  // Distinct values per categorical field: one entry (used for all 26) or 26.
  // Empty means a Criteo-like mix from 3 to 200,000.
  std::vector<int64_t> cardinalities;
  // Calibration target for the mean click probability.
  double target_ctr = 0.25;
};

struct DataGenReport {
  std::string train_path;
  std::string eval_path;
  int64_t train_rows = 0;
  int64_t eval_rows = 0;
  double train_ctr = 0;  // fraction of clicked rows written
  double eval_ctr = 0;
  double oracle_auc = 0;      // AUC of the true probabilities on eval
  double oracle_logloss = 0;  // log loss of the true probabilities on eval
  double seconds = 0;
};

// Writes both files (each under a temporary name, renamed when complete, so a
// reader never sees half a file). Deterministic in the options. An error
// names the path that failed.
Status GenerateCriteoData(const DataGenOptions& options, DataGenReport* report);

// The cardinalities used when DataGenOptions::cardinalities is empty.
std::vector<int64_t> DefaultCardinalities();

}  // namespace deepfm

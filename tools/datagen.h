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
  double bytes_per_row = 0;   // file bytes over rows written, both splits
  double mean_list_length = 0;  // ELM: tokens per history list
  double seconds = 0;
};

// Writes both files (each under a temporary name, renamed when complete, so a
// reader never sees half a file). Deterministic in the options. An error
// names the path that failed.
Status GenerateCriteoData(const DataGenOptions& options, DataGenReport* report);

// Synthetic data of the Ali ELM (Ele.me) schema that DeepRec's tianchi
// DeepFM trains on (the `elm` feature spec, DESIGN.md §3b): 39 columns, no
// header, history lists of ';'-separated tokens. Clicks come from a planted
// model shaped like the real data's: a user's taste against the candidate
// shop's and item's factors, whether the candidate shop, its category or its
// brand is in the user's click history (the history lists carry the
// signal), time of day against the shop's category, the gap between the
// item's price and the user's usual price, and a little from the user's own
// numeric columns. The click rate is calibrated to target_ctr (the real data
// has about 1.8 %), history lists have a mean length of about mean_history
// (at most max_history), and a row is about 1.7 KB, as in the real data.
struct ElmDataGenOptions {
  int64_t train_rows = 500000;
  int64_t eval_rows = 100000;
  uint64_t seed = 2026;
  std::string out_dir;  // train.csv and eval.csv, created if missing
  double target_ctr = 0.03;
  int mean_history = 40;
  int max_history = 50;
  // Distinct users and shops; 0 scales them with the rows.
  int64_t users = 0;
  int64_t shops = 0;
};

Status GenerateElmData(const ElmDataGenOptions& options, DataGenReport* report);

// Writes data of a preset's schema: "criteo" (GenerateCriteoData) or "elm"
// (GenerateElmData, rows, seed and out_dir taken from `options`); any other
// name is an error naming the two.
Status GeneratePresetData(const std::string& preset, const DataGenOptions& options,
                          DataGenReport* report);

// The cardinalities used when DataGenOptions::cardinalities is empty.
std::vector<int64_t> DefaultCardinalities();

}  // namespace deepfm

// `deepfm predict`: scores data files with an export, on every core, and
// writes one probability per good row in input order. Rows are parsed by the
// model's own feature spec with the training reader (bad lines are reported,
// skipped and counted as in training; the label cell may be empty). Where
// rows have labels, the AUC, logloss and accuracy over them are computed the
// way the trainer's evaluation computes them, and equal it exactly for the
// same checkpoint, data and --batch_size (the trainer evaluates in batches
// of 4096, the default here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "serving/serving_model.h"

namespace deepfm::serving {

struct PredictOptions {
  std::string model;               // an export root, version folder or model.dfm
  std::vector<std::string> files;  // data, read in order
  std::string out;                 // scores file; empty: no file (metrics only)
  int threads = 0;                 // scoring threads; 0: every core this process may use
  int batch_size = 4096;
  double max_bad_fraction = 0.001;
  bool strict = false;
  ModelOptions model_options;
};

struct PredictResult {
  int64_t rows = 0;          // scored
  int64_t labeled_rows = 0;  // of them with a label
  int64_t bad_lines = 0;
  double auc = 0, logloss = 0, accuracy = 0;  // over the labeled rows
  double seconds = 0;
  int threads = 0;
  int64_t model_version = 0;
  std::string model_path;
  double rows_per_second() const { return seconds > 0 ? rows / seconds : 0; }
};

Status BatchPredict(const PredictOptions& options, PredictResult* result);

}  // namespace deepfm::serving

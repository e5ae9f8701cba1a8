// A Predict request's rows as a Batch the model's Scorer reads: csv rows
// parsed by the training reader's ParseLine (the label cell may be empty),
// typed rows written out as the csv line they stand for and parsed the same
// way, so both kinds score exactly like the training data. Any bad row is
// INVALID_ARGUMENT naming it and the field at fault; nothing is scored then.
#pragma once

#include <cstddef>

#include "common/status.h"
#include "proto/serving.pb.h"
#include "spec/feature_spec.h"
#include "worker/batch.h"

namespace deepfm::serving {

// The most rows one request may carry.
inline constexpr int kMaxRequestRows = 65536;

// Parses `request` into `out` (reshaped for `spec`; out->size = its rows).
Status ParseRequestRows(const FeatureSpec& spec, const PredictRequest& request, Batch* out);

// The csv line a typed row stands for, in the spec's column order with its
// separator. `where` names the row in errors ("rows[3]").
Status TypedRowToLine(const FeatureSpec& spec, const TypedRow& row, const std::string& where,
                      std::string* line);

// The separator a request's csv rows use: the spec's, else (a spec that
// leaves it to each file) a tab when the row has one, else ','.
char RequestSeparator(const FeatureSpec& spec, const std::string& row);

// Appends src's rows to *dst (both shaped for the same spec).
void AppendRows(const Batch& src, Batch* dst);

}  // namespace deepfm::serving

// The feature spec, resolved (DESIGN.md §3c): what a row of data is, which
// embedding tables its features look up, and where each lands in the DNN's
// input. One immutable object, built once from the proto
// (proto/feature_spec.proto) and validated whole, serves the reader, the
// trainer, the data generator and the launcher; nothing else in the code
// knows column counts. The shards never need it.
//
// Resolution:
//   columns  -> in file order; the label, the numeric inputs (numeric and
//               numeric-list columns, numbered in file order), the features
//               (categorical and list columns, numbered in file order)
//   features -> (table, member): a table's members in the order its
//               `columns` lists them
//   DNN input = [pooled embedding of feature 0 .. F-1, numeric 0 .. N-1]
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proto/feature_spec.pb.h"

namespace deepfm {

class FeatureSpec {
 public:
  enum class Kind { kLabel, kNumeric, kCategorical, kList, kNumericList, kIgnored };

  struct ColumnInfo {
    std::string name;
    Kind kind = Kind::kIgnored;
    int numeric = -1;  // kNumeric, kNumericList: index among the numeric inputs
    int feature = -1;  // kCategorical, kList: index among the features
    int table = -1;    // kCategorical, kList
    int member = -1;   // kCategorical, kList: position among the table's members
    uint32_t key_seed = 0;
    uint64_t hash_buckets = 0;  // the table's; 0: an embedding variable
    std::string default_value;   // kCategorical, kList, kNumericList
    double numeric_default = 0;  // kNumeric
    spec::Transform transform = spec::IDENTITY;
    bool drop_empty = false;     // kCategorical
    char list_separator = ';';   // kList, kNumericList
    spec::Combiner combiner = spec::MEAN;
    uint32_t max_length = 0;     // kList: 0 = no cap
    std::vector<std::string> vocabulary;  // empty: every token looks up
  };

  struct TableInfo {
    std::string name;
    int dim = 0;
    std::vector<int> columns;  // member columns, in member order
    // Every member yields exactly one key per row (single-valued, empty cells
    // hashed, no vocabulary): the table's keys are a fixed [rows x members]
    // matrix and need no row splits.
    bool fixed_width = false;
  };

  struct FeatureInfo {
    int column = 0;
    int table = 0;
    int member = 0;
    bool linear = true;  // counted by a weightless linear part (model.linear_columns)
  };

  // A preset name ("criteo", "elm") or a path to a text-format spec file.
  static Status Load(const std::string& name_or_path, std::shared_ptr<const FeatureSpec>* out);
  // Text format; `origin` names the source in errors.
  static Status Parse(const std::string& text, const std::string& origin,
                      std::shared_ptr<const FeatureSpec>* out);
  // Validates and resolves; an error names the column or table at fault.
  static Status FromProto(const spec::FeatureSpec& proto, const std::string& origin,
                          std::shared_ptr<const FeatureSpec>* out);
  // The compiled-in presets' names.
  static std::vector<std::string> PresetNames();
  // The preset's text, or empty when there is none of that name.
  static std::string PresetText(const std::string& name);

  const spec::FeatureSpec& proto() const { return proto_; }
  const std::string& name() const { return proto_.name(); }
  // 16 hex digits of a hash of the canonical serialization: equal specs,
  // equal fingerprints, whatever the file's formatting and comments.
  const std::string& fingerprint() const { return fingerprint_; }
  // Canonical text format (what the job folder keeps).
  std::string Text() const;

  const std::vector<ColumnInfo>& columns() const { return columns_; }
  const std::vector<TableInfo>& tables() const { return tables_; }
  const std::vector<FeatureInfo>& features() const { return features_; }
  int num_columns() const { return static_cast<int>(columns_.size()); }
  int num_numeric() const { return num_numeric_; }
  int num_features() const { return static_cast<int>(features_.size()); }
  int label_column() const { return label_column_; }
  // Every table's dimension (the FM needs one).
  int embedding_dim() const { return tables_.empty() ? 0 : tables_[0].dim; }
  // num_features * embedding_dim + num_numeric.
  int dnn_input_width() const { return num_features() * embedding_dim() + num_numeric_; }
  // The separator of the layout; 0 when it is decided per file.
  char separator() const { return separator_; }
  bool header() const { return proto_.layout().header(); }
  std::vector<int> hidden_units() const {
    return {proto_.model().hidden_units().begin(), proto_.model().hidden_units().end()};
  }
  // The network section (hidden_units above is its first field).
  const spec::Model& model() const { return proto_.model(); }

 private:
  FeatureSpec() = default;
  spec::FeatureSpec proto_;
  std::string fingerprint_;
  std::vector<ColumnInfo> columns_;
  std::vector<TableInfo> tables_;
  std::vector<FeatureInfo> features_;
  int num_numeric_ = 0;
  int label_column_ = -1;
  char separator_ = 0;
};

using FeatureSpecPtr = std::shared_ptr<const FeatureSpec>;

// --feature_spec's value as a task resolves it: a preset or a file, or
// "auto": the preset whose column count the first line of `first_file` has
// (40: criteo, 39: elm, counted with ',' or a tab). Anything else is an
// error naming --feature_spec.
Status ResolveFeatureSpec(const std::string& flag, const std::string& first_file,
                          FeatureSpecPtr* out);

// What differs between two specs, field by field ("column 3 (gender):
// numeric.default_value: -99 -> 0"), at most a few lines; empty when equal.
std::string DescribeSpecDifference(const spec::FeatureSpec& was, const spec::FeatureSpec& now);

}  // namespace deepfm

#include "spec/feature_spec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "common/checkpoint_manifest.h"
#include "common/hash.h"

namespace deepfm {
namespace {

using Kind = FeatureSpec::Kind;

// Collects parse errors with their line and column instead of printing them.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!first.empty()) return;
    first = "line " + std::to_string(line + 1) + " column " + std::to_string(column + 1) + ": " +
            message;
  }
  std::string first;
};

Status SingleByte(const std::string& s, const std::string& what, char fallback, char* out) {
  if (s.empty()) {
    *out = fallback;
    return Status::Ok();
  }
  if (s.size() != 1) {
    return InvalidArgument(what + " must be one byte, got \"" + s + "\"");
  }
  *out = s[0];
  return Status::Ok();
}

}  // namespace

Status FeatureSpec::Load(const std::string& name_or_path, FeatureSpecPtr* out) {
  const std::string preset = PresetText(name_or_path);
  if (!preset.empty()) return Parse(preset, "preset " + name_or_path, out);
  std::ifstream in(name_or_path);
  if (!in) {
    std::string names;
    for (const std::string& n : PresetNames()) names += (names.empty() ? "" : ", ") + n;
    return NotFound("--feature_spec=" + name_or_path + ": no such preset (" + names +
                    ") and no file of that name");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), name_or_path, out);
}

Status FeatureSpec::Parse(const std::string& text, const std::string& origin, FeatureSpecPtr* out) {
  spec::FeatureSpec proto;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &proto)) {
    return InvalidArgument(origin + ": not a feature spec in protobuf text format: " +
                           (errors.first.empty() ? "parse error" : errors.first));
  }
  return FromProto(proto, origin, out);
}

Status FeatureSpec::FromProto(const spec::FeatureSpec& proto, const std::string& origin,
                              FeatureSpecPtr* out) {
  std::shared_ptr<FeatureSpec> fs(new FeatureSpec());
  fs->proto_ = proto;
  auto bad = [&](const std::string& what) { return InvalidArgument(origin + ": " + what); };
  Status s = SingleByte(proto.layout().separator(), "layout.separator", 0, &fs->separator_);
  if (!s.ok()) return bad(s.message());
  if (fs->separator_ == '\n' || fs->separator_ == '\r') return bad("layout.separator cannot end lines");
  if (proto.columns_size() == 0) return bad("no columns");

  std::map<std::string, int> by_name;
  for (int c = 0; c < proto.columns_size(); ++c) {
    const spec::Column& col = proto.columns(c);
    const std::string where = "column " + std::to_string(c + 1) + " (" + col.name() + ")";
    if (col.name().empty()) return bad("column " + std::to_string(c + 1) + " has no name");
    if (!by_name.emplace(col.name(), c).second) return bad("two columns are named " + col.name());
    ColumnInfo info;
    info.name = col.name();
    switch (col.kind_case()) {
      case spec::Column::kLabel:
        if (fs->label_column_ >= 0) {
          return bad(where + " is a second label; exactly one column is the label");
        }
        info.kind = Kind::kLabel;
        fs->label_column_ = c;
        break;
      case spec::Column::kNumeric:
        info.kind = Kind::kNumeric;
        info.numeric = fs->num_numeric_++;
        info.numeric_default = col.numeric().default_value();
        info.transform = col.numeric().transform();
        if (!std::isfinite(info.numeric_default)) return bad(where + ": default_value is not finite");
        break;
      case spec::Column::kCategorical:
        info.kind = Kind::kCategorical;
        info.default_value = col.categorical().default_value();
        info.drop_empty = col.categorical().drop_empty();
        info.vocabulary.assign(col.categorical().vocabulary().begin(),
                               col.categorical().vocabulary().end());
        break;
      case spec::Column::kList: {
        info.kind = Kind::kList;
        const spec::TokenList& l = col.list();
        s = SingleByte(l.separator(), where + ": list.separator", ';', &info.list_separator);
        if (!s.ok()) return bad(s.message());
        info.combiner = l.combiner();
        info.max_length = l.max_length();
        info.default_value = l.default_value();
        info.vocabulary.assign(l.vocabulary().begin(), l.vocabulary().end());
        break;
      }
      case spec::Column::kNumericList:
        info.kind = Kind::kNumericList;
        info.numeric = fs->num_numeric_++;
        s = SingleByte(col.numeric_list().separator(), where + ": numeric_list.separator", ';',
                       &info.list_separator);
        if (!s.ok()) return bad(s.message());
        info.default_value = col.numeric_list().default_value();
        info.transform = col.numeric_list().transform();
        break;
      case spec::Column::kIgnored:
        info.kind = Kind::kIgnored;
        break;
      case spec::Column::KIND_NOT_SET:
        return bad(where + " has no kind (label, numeric, categorical, list, numeric_list or "
                           "ignored)");
    }
    if ((info.kind == Kind::kList || info.kind == Kind::kNumericList) &&
        fs->separator_ != 0 && info.list_separator == fs->separator_) {
      return bad(where + ": its list separator is the column separator");
    }
    fs->columns_.push_back(std::move(info));
  }
  if (fs->label_column_ < 0) return bad("no label column");

  std::map<std::string, int> table_names;
  for (int t = 0; t < proto.tables_size(); ++t) {
    const spec::Table& tp = proto.tables(t);
    const std::string where = "table " + std::to_string(t + 1) + " (" + tp.name() + ")";
    if (tp.name().empty()) return bad("table " + std::to_string(t + 1) + " has no name");
    if (!table_names.emplace(tp.name(), t).second) return bad("two tables are named " + tp.name());
    if (tp.dim() == 0 || tp.dim() > 4096) return bad(where + ": dim must be in [1, 4096]");
    if (tp.columns_size() == 0) return bad(where + " lists no columns");
    TableInfo info;
    info.name = tp.name();
    info.dim = static_cast<int>(tp.dim());
    info.fixed_width = true;
    std::vector<int> members;
    for (const std::string& name : tp.columns()) {
      auto it = by_name.find(name);
      if (it == by_name.end()) return bad(where + " names column " + name + ", which does not exist");
      members.push_back(it->second);
    }
    // Members go in file order, which is the order a line yields their keys.
    std::sort(members.begin(), members.end());
    for (size_t m = 0; m < members.size(); ++m) {
      ColumnInfo& col = fs->columns_[members[m]];
      if (col.kind != Kind::kCategorical && col.kind != Kind::kList) {
        return bad(where + ": column " + col.name + " is not categorical or a list");
      }
      if (col.table >= 0) {
        return bad("column " + col.name + " is in two tables (" +
                   (col.table < t ? fs->tables_[col.table].name : tp.name()) + " and " + tp.name() +
                   "); a shared embedding is one table with several columns");
      }
      col.table = t;
      col.member = static_cast<int>(m);
      col.key_seed = tp.seed_per_column()
                         ? static_cast<uint32_t>(m)
                         : (tp.has_key_seed() ? tp.key_seed() : static_cast<uint32_t>(t));
      col.hash_buckets = tp.hash_buckets();
      info.columns.push_back(members[m]);
      if (col.kind != Kind::kCategorical || col.drop_empty || !col.vocabulary.empty()) {
        info.fixed_width = false;
      }
    }
    if (!fs->tables_.empty() && info.dim != fs->tables_[0].dim) {
      return bad(where + ": dim " + std::to_string(info.dim) + " differs from table " +
                 fs->tables_[0].name + "'s " + std::to_string(fs->tables_[0].dim) +
                 "; the FM needs one dimension for every table");
    }
    fs->tables_.push_back(std::move(info));
  }
  if (fs->tables_.empty()) return bad("no tables: at least one categorical or list column needs a table");
  for (size_t c = 0; c < fs->columns_.size(); ++c) {
    ColumnInfo& col = fs->columns_[c];
    if ((col.kind == Kind::kCategorical || col.kind == Kind::kList) && col.table < 0) {
      return bad("column " + col.name + " is in no table; list it under a table's columns, or make it ignored");
    }
    if (col.table >= 0) {
      col.feature = static_cast<int>(fs->features_.size());
      fs->features_.push_back({static_cast<int>(c), col.table, col.member});
    }
  }
  const spec::Model& m = proto.model();
  for (int h : m.hidden_units()) {
    if (h <= 0) return bad("model.hidden_units must be positive");
  }
  for (int h : m.final_hidden_units()) {
    if (h <= 0) return bad("model.final_hidden_units must be positive");
  }
  if (m.fm() == spec::Model::VECTOR && m.final_hidden_units().empty()) {
    return bad("model.fm: VECTOR needs model.final_hidden_units (a vector has no place in the logit "
               "without a final DNN)");
  }
  if (m.linear_columns_size() > 0) {
    for (FeatureInfo& f : fs->features_) f.linear = false;
    for (const std::string& name : m.linear_columns()) {
      bool found = false;
      for (FeatureInfo& f : fs->features_) {
        if (fs->columns_[f.column].name == name) {
          found = true;
          f.linear = true;
        }
      }
      if (!found) {
        return bad("model.linear_columns names " + name +
                   ", which is no categorical or list column of a table");
      }
    }
  }
  if (m.batch_norm_momentum() < 0 || m.batch_norm_momentum() >= 1) {
    return bad("model.batch_norm_momentum must lie in [0, 1)");
  }
  if (m.batch_norm_epsilon() < 0) return bad("model.batch_norm_epsilon must not be negative");

  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    proto.SerializeToCodedStream(&coded);
  }
  char hex[17];
  snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Mix64(Fnv1a64(bytes))));
  fs->fingerprint_ = hex;
  *out = std::move(fs);
  return Status::Ok();
}

std::string FeatureSpec::Text() const {
  std::string text;
  google::protobuf::TextFormat::PrintToString(proto_, &text);
  return text;
}

Status ResolveFeatureSpec(const std::string& flag, const std::string& first_file,
                          FeatureSpecPtr* out) {
  if (flag != "auto") return FeatureSpec::Load(flag, out);
  std::ifstream in(first_file);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return InvalidArgument("--feature_spec=auto: cannot read a first line of " + first_file +
                           " to tell its layout; give --feature_spec=criteo, elm or a spec file");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto commas = std::count(line.begin(), line.end(), ',');
  const auto tabs = std::count(line.begin(), line.end(), '\t');
  const int64_t columns = 1 + std::max(commas, tabs);
  if (columns == 40) return FeatureSpec::Load("criteo", out);
  if (columns == 39) return FeatureSpec::Load("elm", out);
  return InvalidArgument(first_file + ": its first line has " + std::to_string(columns) +
                         " columns, neither Criteo's 40 (--feature_spec=criteo) nor ELM's 39 "
                         "(--feature_spec=elm); describe the data in a spec file and pass "
                         "--feature_spec=PATH (README: \"Your own data\")");
}

std::string DescribeSpecDifference(const spec::FeatureSpec& was, const spec::FeatureSpec& now) {
  std::string report;
  {
    google::protobuf::util::MessageDifferencer diff;
    // A field set to its default reads as a change of value, not a deletion.
    diff.set_message_field_comparison(google::protobuf::util::MessageDifferencer::EQUIVALENT);
    google::protobuf::io::StringOutputStream stream(&report);
    google::protobuf::util::MessageDifferencer::StreamReporter reporter(&stream);
    diff.ReportDifferencesTo(&reporter);
    diff.Compare(was, now);
  }
  // A few lines say enough; a whole other spec would bury the message.
  std::string out;
  std::istringstream lines(report);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    if (++n > 4) {
      out += "; ...";
      break;
    }
    out += (out.empty() ? "" : "; ") + line;
  }
  return out;
}

}  // namespace deepfm

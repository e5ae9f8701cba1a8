// A Predict request's rows (serving/request_rows.h): typed rows parse to
// exactly what their csv line parses to, batching requests is appending
// their rows, and every bad row is refused naming the row and the field.
#include "serving/request_rows.h"

#include <gtest/gtest.h>

#include <cmath>

#include "worker/data_reader.h"

namespace deepfm::serving {
namespace {

FeatureSpecPtr Spec(const std::string& name) {
  FeatureSpecPtr spec;
  EXPECT_TRUE(FeatureSpec::Load(name, &spec).ok());
  return spec;
}

// A row of `spec` with every kind of cell, as csv and as a typed row; row
// `i` varies the values.
void MakeRow(const FeatureSpec& spec, int i, std::string* csv, TypedRow* typed) {
  const char sep = spec.separator() ? spec.separator() : ',';
  csv->clear();
  typed->Clear();
  for (size_t c = 0; c < spec.columns().size(); ++c) {
    const FeatureSpec::ColumnInfo& col = spec.columns()[c];
    if (c > 0) *csv += sep;
    Value v;
    switch (col.kind) {
      case FeatureSpec::Kind::kLabel:
        *csv += "1";
        continue;  // typed rows leave the label out
      case FeatureSpec::Kind::kNumeric:
        if ((c + i) % 5 == 0) continue;  // empty: the default
        *csv += std::to_string(i + c) + ".25";
        v.set_number(i + c + 0.25);
        break;
      case FeatureSpec::Kind::kCategorical:
        *csv += "t" + std::to_string((i * 7 + c) % 11);
        v.set_text("t" + std::to_string((i * 7 + c) % 11));
        break;
      case FeatureSpec::Kind::kList:
      case FeatureSpec::Kind::kNumericList: {
        const bool num = col.kind == FeatureSpec::Kind::kNumericList;
        for (size_t k = 0; k < 1 + (i + c) % 4; ++k) {
          const std::string tok = num ? std::to_string(k + i) : "w" + std::to_string((k + i) % 9);
          if (k > 0) *csv += col.list_separator;
          *csv += tok;
          v.mutable_list()->add_values(tok);
        }
        break;
      }
      case FeatureSpec::Kind::kIgnored:
        continue;
    }
    (*typed->mutable_features())[col.name] = v;
  }
}

void ExpectSameRows(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.size, b.size);
  EXPECT_EQ(a.dense, b.dense);
  ASSERT_EQ(a.tables.size(), b.tables.size());
  for (size_t t = 0; t < a.tables.size(); ++t) {
    EXPECT_EQ(a.tables[t].keys, b.tables[t].keys) << "table " << t;
    if (!a.tables[t].fixed) {
      EXPECT_EQ(std::vector<int32_t>(a.tables[t].splits.begin(),
                                     a.tables[t].splits.begin() + a.size * a.tables[t].members + 1),
                std::vector<int32_t>(b.tables[t].splits.begin(),
                                     b.tables[t].splits.begin() + b.size * b.tables[t].members + 1))
          << "table " << t;
    }
  }
}

TEST(RequestRowsTest, TypedRowsParseExactlyAsTheirCsvLine) {
  for (const char* preset : {"elm", "criteo"}) {
    SCOPED_TRACE(preset);
    const FeatureSpecPtr spec = Spec(preset);
    PredictRequest csv_req, typed_req;
    for (int i = 0; i < 6; ++i) {
      std::string line;
      TypedRow row;
      MakeRow(*spec, i, &line, &row);
      csv_req.add_csv_rows(line);
      *typed_req.add_rows() = row;
    }
    Batch from_csv, from_typed;
    ASSERT_TRUE(ParseRequestRows(*spec, csv_req, &from_csv).ok());
    const Status s = ParseRequestRows(*spec, typed_req, &from_typed);
    ASSERT_TRUE(s.ok()) << s.message();
    ExpectSameRows(from_csv, from_typed);
    EXPECT_EQ(from_csv.labels[0], 1.0f);
    EXPECT_TRUE(std::isnan(from_typed.labels[0]));  // no label: a row to score
  }
}

TEST(RequestRowsTest, AppendingRequestsEqualsParsingThemTogether) {
  const FeatureSpecPtr spec = Spec("elm");
  PredictRequest all, first, second;
  for (int i = 0; i < 7; ++i) {
    std::string line;
    TypedRow row;
    MakeRow(*spec, i, &line, &row);
    all.add_csv_rows(line);
    (i < 3 ? first : second).add_csv_rows(line);
  }
  Batch together, a, b, merged;
  ASSERT_TRUE(ParseRequestRows(*spec, all, &together).ok());
  ASSERT_TRUE(ParseRequestRows(*spec, first, &a).ok());
  ASSERT_TRUE(ParseRequestRows(*spec, second, &b).ok());
  merged.Shape(*spec);
  // A reused batch: a stale pass's rows are cleared first.
  AppendRows(b, &merged);
  merged.Resize(0);
  AppendRows(a, &merged);
  AppendRows(b, &merged);
  ExpectSameRows(together, merged);
}

TEST(RequestRowsTest, BadRowsAreRefusedNamingRowAndField) {
  const FeatureSpecPtr spec = Spec("elm");
  std::string line;
  TypedRow row;
  MakeRow(*spec, 1, &line, &row);
  Batch out;
  auto refuse = [&](const PredictRequest& req, const std::string& expect) {
    const Status s = ParseRequestRows(*spec, req, &out);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << expect;
    EXPECT_NE(s.message().find(expect), std::string::npos) << s.message();
  };
  PredictRequest empty;
  refuse(empty, "no rows");
  PredictRequest both;
  both.add_csv_rows(line);
  *both.add_rows() = row;
  refuse(both, "one way or the other");
  PredictRequest short_row;
  short_row.add_csv_rows(line);
  short_row.add_csv_rows(line.substr(0, line.rfind(',')));
  refuse(short_row, "csv_rows[1]");
  // A numeric column holding a word: the column is named.
  int numeric = -1;
  for (size_t c = 0; c < spec->columns().size(); ++c) {
    if (spec->columns()[c].kind == FeatureSpec::Kind::kNumeric) numeric = static_cast<int>(c);
  }
  ASSERT_GE(numeric, 0);
  const std::string name = spec->columns()[numeric].name;
  TypedRow bad = row;
  (*bad.mutable_features())[name].set_text("abc");
  PredictRequest bad_numeric;
  *bad_numeric.add_rows() = row;
  *bad_numeric.add_rows() = bad;
  refuse(bad_numeric, "rows[1]");
  refuse(bad_numeric, name);
  TypedRow unknown = row;
  (*unknown.mutable_features())["no_such_column"].set_text("x");
  PredictRequest unknown_req;
  *unknown_req.add_rows() = unknown;
  refuse(unknown_req, "rows[0].features['no_such_column']");
  TypedRow sep = row;
  (*sep.mutable_features())[name].set_text("1,2");
  PredictRequest sep_req;
  *sep_req.add_rows() = sep;
  refuse(sep_req, "separator");
  PredictRequest newline;
  newline.add_csv_rows(line + "\n" + line);
  refuse(newline, "csv_rows[0]");
  // One row beyond the limit is refused, the limit itself is not.
  PredictRequest many;
  for (int i = 0; i < kMaxRequestRows; ++i) many.add_csv_rows(line);
  EXPECT_TRUE(ParseRequestRows(*spec, many, &out).ok());
  many.add_csv_rows(line);
  refuse(many, "more than");
}

}  // namespace
}  // namespace deepfm::serving

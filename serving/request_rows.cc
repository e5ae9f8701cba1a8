#include "serving/request_rows.h"

#include <cmath>
#include <cstdio>

#include "worker/data_reader.h"

namespace deepfm::serving {

namespace {

bool Contains(const std::string& s, char c) { return c != 0 && s.find(c) != std::string::npos; }

std::string Field(const std::string& where, const std::string& column) {
  return where + ".features['" + column + "']";
}

}  // namespace

char RequestSeparator(const FeatureSpec& spec, const std::string& row) {
  if (spec.separator() != 0) return spec.separator();
  return row.find('\t') != std::string::npos ? '\t' : ',';
}

Status TypedRowToLine(const FeatureSpec& spec, const TypedRow& row, const std::string& where,
                      std::string* line) {
  const char sep = spec.separator() != 0 ? spec.separator() : ',';
  for (const auto& [name, value] : row.features()) {
    bool known = false;
    for (const FeatureSpec::ColumnInfo& c : spec.columns()) known |= c.name == name;
    if (!known)
      return InvalidArgument(Field(where, name) + ": the model has no column of that name");
  }
  line->clear();
  for (size_t ci = 0; ci < spec.columns().size(); ++ci) {
    const FeatureSpec::ColumnInfo& c = spec.columns()[ci];
    if (ci > 0) *line += sep;
    auto it = row.features().find(c.name);
    if (it == row.features().end() || c.kind == FeatureSpec::Kind::kLabel ||
        c.kind == FeatureSpec::Kind::kIgnored) {
      continue;  // an empty cell: the column's default (the label is not read)
    }
    const Value& v = it->second;
    const bool list =
        c.kind == FeatureSpec::Kind::kList || c.kind == FeatureSpec::Kind::kNumericList;
    auto put_text = [&](const std::string& text) -> Status {
      if (Contains(text, sep) || text.find('\n') != std::string::npos ||
          (list && Contains(text, c.list_separator))) {
        return InvalidArgument(Field(where, c.name) +
                               ": a value may not hold the separator or a newline");
      }
      *line += text;
      return Status::Ok();
    };
    switch (v.kind_case()) {
      case Value::kText: {
        Status s = put_text(v.text());
        if (!s.ok()) return s;
        break;
      }
      case Value::kNumber: {
        if (c.kind != FeatureSpec::Kind::kNumeric && c.kind != FeatureSpec::Kind::kCategorical) {
          return InvalidArgument(Field(where, c.name) + ": a list column takes a list");
        }
        if (!std::isfinite(v.number()))
          return InvalidArgument(Field(where, c.name) + ": not a finite number");
        char buf[32];
        // Integers as the data writes them (a categorical token "7", not "7.0").
        if (v.number() == std::floor(v.number()) && std::fabs(v.number()) < 1e15) {
          snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v.number()));
        } else {
          snprintf(buf, sizeof(buf), "%.17g", v.number());
        }
        *line += buf;
        break;
      }
      case Value::kList: {
        if (!list)
          return InvalidArgument(Field(where, c.name) + ": a list given to a single-valued column");
        for (int i = 0; i < v.list().values_size(); ++i) {
          if (i > 0) *line += c.list_separator;
          Status s = put_text(v.list().values(i));
          if (!s.ok()) return InvalidArgument(s.message() + " (item " + std::to_string(i) + ")");
        }
        break;
      }
      case Value::KIND_NOT_SET:
        break;
    }
  }
  return Status::Ok();
}

Status ParseRequestRows(const FeatureSpec& spec, const PredictRequest& req, Batch* out) {
  const int csv = req.csv_rows_size(), typed = req.rows_size();
  if (csv > 0 && typed > 0) {
    return InvalidArgument("csv_rows and rows: a request gives its rows one way or the other");
  }
  const int n = csv + typed;
  if (n == 0) return InvalidArgument("csv_rows: the request carries no rows");
  if (n > kMaxRequestRows) {
    return InvalidArgument(std::string(csv ? "csv_rows" : "rows") + ": " + std::to_string(n) +
                           " rows, more than the " + std::to_string(kMaxRequestRows) +
                           " one request may carry");
  }
  if (out->tables.size() != spec.tables().size()) out->Shape(spec);
  out->size = 0;
  out->truncated_tokens = 0;
  out->Resize(n);
  std::string line, what;
  for (int i = 0; i < n; ++i) {
    const std::string where = (csv ? "csv_rows[" : "rows[") + std::to_string(i) + "]";
    const std::string* text;
    if (csv) {
      text = &req.csv_rows(i);
    } else {
      Status s = TypedRowToLine(spec, req.rows(i), where, &line);
      if (!s.ok()) return s;
      text = &line;
    }
    if (text->find('\n') != std::string::npos)
      return InvalidArgument(where + ": a row is one line");
    what.clear();
    if (ParseLine(spec, *text, RequestSeparator(spec, *text), out, i, &what,
                  /*label_optional=*/true) != LineError::kOk) {
      return InvalidArgument(where + ": " + what);
    }
  }
  return Status::Ok();
}

void AppendRows(const Batch& src, Batch* dst) {
  const int before = dst->size;
  dst->size += src.size;
  dst->labels.insert(dst->labels.end(), src.labels.begin(), src.labels.begin() + src.size);
  dst->dense.insert(dst->dense.end(), src.dense.begin(),
                    src.dense.begin() + static_cast<size_t>(src.size) * src.num_numeric);
  for (size_t t = 0; t < dst->tables.size(); ++t) {
    TableKeys& d = dst->tables[t];
    const TableKeys& s = src.tables[t];
    const size_t cells = static_cast<size_t>(src.size) * s.members;
    if (s.fixed) {
      d.keys.insert(d.keys.end(), s.keys.begin(), s.keys.begin() + cells);
      continue;
    }
    const int32_t base = static_cast<int32_t>(d.keys.size());
    if (d.splits.empty()) d.splits.push_back(0);
    d.splits.resize(static_cast<size_t>(before) * d.members + 1);
    for (size_t i = 1; i <= cells; ++i) d.splits.push_back(base + s.splits[i]);
    d.keys.insert(d.keys.end(), s.keys.begin(), s.keys.begin() + s.splits[cells]);
  }
  dst->truncated_tokens += src.truncated_tokens;
}

}  // namespace deepfm::serving

#include "obs/job_report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "common/checkpoint_manifest.h"
#include "obs/svg_chart.h"

namespace deepfm::obs {

namespace fs = std::filesystem;

namespace {

std::vector<std::pair<double, double>> SeriesOf(const std::vector<Scalar>& scalars,
                                                const std::string& tag) {
  std::vector<std::pair<double, double>> out;
  for (const Scalar& s : scalars) {
    if (s.tag == tag) out.emplace_back(static_cast<double>(s.step), s.value);
  }
  return out;
}

// Tables' rows per step, summed over the shards: tags
// tables/<table>/shard<i>/rows.
std::map<std::string, std::vector<std::pair<double, double>>> TableRows(
    const std::vector<Scalar>& scalars) {
  std::map<std::string, std::map<int64_t, double>> by_table;
  for (const Scalar& s : scalars) {
    if (s.tag.rfind("tables/", 0) != 0 || s.tag.size() < 5 ||
        s.tag.compare(s.tag.size() - 5, 5, "/rows") != 0) {
      continue;
    }
    const std::string rest = s.tag.substr(7, s.tag.size() - 7 - 5);  // <table>/shard<i>
    const size_t slash = rest.rfind("/shard");
    if (slash == std::string::npos) continue;
    by_table[rest.substr(0, slash)][s.step] += s.value;
  }
  std::map<std::string, std::vector<std::pair<double, double>>> out;
  for (const auto& [table, steps] : by_table) {
    for (const auto& [step, rows] : steps) out[table].emplace_back(static_cast<double>(step), rows);
  }
  return out;
}

std::string Fmt(const char* format, double v) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string Cell(const std::string& s, bool header = false) {
  return std::string(header ? "<th>" : "<td>") + XmlEscape(s) + (header ? "</th>" : "</td>");
}

std::string SummaryTable(const std::vector<JobRun>& runs) {
  std::string out = "<table class=\"summary\"><tr>" + Cell("job", true) + Cell("global step", true) +
                    Cell("samples/s", true) + Cell("train rows", true) + Cell("train s", true) +
                    Cell("AUC", true) + Cell("logloss", true) + Cell("accuracy", true) +
                    Cell("table rows", true) + Cell("table MB", true) + Cell("ps × workers", true) +
                    "</tr>\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const JobRun& r = runs[i];
    out += "<tr><td><span class=\"swatch\" style=\"background:" + PaletteColor(i) + "\"></span>" +
           XmlEscape(r.name) + "</td>";
    if (!r.has_metrics) {
      out += "<td colspan=\"10\">no metrics.json (the job did not finish)</td></tr>\n";
      continue;
    }
    const JobMetrics& m = r.metrics;
    uint64_t rows = 0, bytes = 0;
    for (const auto& [name, t] : m.tables) rows += t.rows, bytes += t.bytes;
    out += Cell(std::to_string(m.global_step)) + Cell(Fmt("%.0f", m.samples_per_sec())) +
           Cell(std::to_string(m.train_rows)) + Cell(Fmt("%.2f", m.train_seconds)) +
           Cell(m.has_eval ? Fmt("%.4f", m.eval.auc) : "–") +
           Cell(m.has_eval ? Fmt("%.4f", m.eval.logloss) : "–") +
           Cell(m.has_eval ? Fmt("%.4f", m.eval.accuracy) : "–") + Cell(std::to_string(rows)) +
           Cell(Fmt("%.1f", bytes / 1e6)) +
           Cell(std::to_string(m.ps) + " × " + std::to_string(m.workers)) + "</tr>\n";
  }
  return out + "</table>\n";
}

// Flags any job set, and the ones that shape every run; a row where the
// jobs differ is marked.
std::string FlagsTable(const std::vector<JobRun>& runs) {
  std::set<std::string> shown = {"batch_size", "learning_rate", "optimizer", "bf16",
                                 "ps_num",     "worker_num",    "hidden_units", "embedding_dim",
                                 "steps",      "num_epochs",    "staleness", "seed"};
  bool any = false;
  for (const JobRun& r : runs) {
    if (!r.has_info) continue;
    any = true;
    for (const std::string& f : r.info.flags_set) shown.insert(f);
  }
  if (!any) return "<p>No job.json: the flags were not recorded.</p>\n";
  std::string out = "<table class=\"flags\"><tr>" + Cell("flag", true);
  for (const JobRun& r : runs) out += Cell(r.name, true);
  out += "</tr>\n";
  for (const std::string& f : shown) {
    std::set<std::string> values;
    std::string cells;
    for (const JobRun& r : runs) {
      auto it = r.info.flags.find(f);
      const std::string v = r.has_info && it != r.info.flags.end() ? it->second : "–";
      values.insert(v);
      cells += Cell(v);
    }
    const bool differs = runs.size() > 1 && values.size() > 1;
    out += std::string(differs ? "<tr class=\"differs\">" : "<tr>") + Cell("--" + f) + cells + "</tr>\n";
  }
  return out + "</table>\n";
}

std::string MachineTable(const std::vector<JobRun>& runs) {
  std::set<std::string> keys;
  for (const JobRun& r : runs) {
    for (const auto& [k, v] : r.info.machine) keys.insert(k);
  }
  if (keys.empty()) return "<p>The machine was not recorded.</p>\n";
  std::string out = "<table class=\"machine\"><tr>" + Cell("", true);
  for (const JobRun& r : runs) out += Cell(r.name, true);
  out += "</tr>\n";
  for (const std::string& k : keys) {
    out += "<tr>" + Cell(k);
    for (const JobRun& r : runs) {
      auto it = r.info.machine.find(k);
      out += Cell(it != r.info.machine.end() ? it->second : "–");
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1340px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.differs td { font-weight: bold; background: #fff6d5; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { background: #fff; border: 1px solid #ddd; }
svg .title { font-size: 14px; font-weight: bold; }
svg .legend, svg .tick { font-size: 11px; fill: #444; }
svg .axis { font-size: 12px; fill: #222; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .frame { fill: none; stroke: #999; stroke-width: 1; }
.warning { color: #a40000; }
)";

}  // namespace

std::vector<double> Smooth(const std::vector<double>& ys, double weight) {
  std::vector<double> out;
  double last = 0;
  int n = 0;
  for (double y : ys) {
    if (!std::isfinite(y)) {
      out.push_back(y);
      continue;
    }
    last = last * weight + (1 - weight) * y;
    ++n;
    const double debias = 1 - std::pow(weight, n);
    out.push_back(debias > 0 ? last / debias : y);
  }
  return out;
}

Status LoadJobRun(const std::string& dir, JobRun* run) {
  *run = JobRun();
  run->dir = dir;
  run->name = fs::path(dir).lexically_normal().filename().string();
  if (run->name.empty()) run->name = fs::path(dir).lexically_normal().parent_path().filename().string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(dir + ": no such job folder");
  Status s = ReadScalars((fs::path(dir) / "train").string(), &run->train);
  if (!s.ok()) run->warnings.push_back(s.message());
  s = ReadScalars((fs::path(dir) / "eval").string(), &run->eval);
  if (!s.ok()) run->warnings.push_back(s.message());
  const std::string metrics = (fs::path(dir) / "metrics.json").string();
  if (fs::exists(metrics, ec)) {
    s = ReadJobMetrics(metrics, &run->metrics);
    run->has_metrics = s.ok();
    if (!s.ok()) run->warnings.push_back(s.message());
  }
  const std::string info = (fs::path(dir) / "job.json").string();
  if (fs::exists(info, ec)) {
    s = ReadJobInfo(info, &run->info);
    run->has_info = s.ok();
    if (!s.ok()) run->warnings.push_back(s.message());
  }
  if (run->train.empty() && run->eval.empty() && !run->has_metrics && !run->has_info) {
    return NotFound(dir + ": not a job folder (no train/ or eval/ events, metrics.json or job.json)");
  }
  return Status::Ok();
}

std::string RenderReport(const std::vector<JobRun>& runs) {
  std::string names;
  for (const JobRun& r : runs) names += (names.empty() ? "" : ", ") + r.name;
  std::string page =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"UTF-8\"/>\n"
      "<title>deepfm report: " + XmlEscape(names) + "</title>\n<style>" + kStyle +
      "</style>\n</head>\n<body>\n<h1>deepfm report: " + XmlEscape(names) + "</h1>\n";
  for (const JobRun& r : runs) {
    for (const std::string& w : r.warnings) {
      page += "<p class=\"warning\">" + XmlEscape(r.name + ": " + w) + "</p>\n";
    }
  }
  page += "<h2>Summary</h2>\n" + SummaryTable(runs);

  LineChart loss{"loss", runs.size() > 1 ? "Training loss (light: raw; dark: smoothed 0.6)" : "Training loss",
                 "global step", "loss (mean over each log interval)", {}};
  LineChart auc{"auc", "Eval AUC", "global step", "AUC", {}};
  LineChart logloss{"logloss", "Eval logloss", "global step", "logloss", {}};
  LineChart rate{"samples_per_sec", "Samples/s", "global step", "samples/s (chief)", {}};
  LineChart rows{"table_rows", "Embedding table rows", "global step", "rows (all shards)", {}};
  StackedBarChart split{"step_time", "Step-time split (compute stage)", "", "µs per step", {}, {}};
  const std::vector<std::pair<std::string, std::string>> parts = {
      {"step_time/wait_us", "wait"}, {"step_time/compute_us", "compute"}, {"step_time/handoff_us", "handoff"}};
  for (size_t p = 0; p < parts.size(); ++p) split.stacks.push_back({parts[p].second, PaletteColor(p + 2 * (runs.size() > 1)), {}});
  split.x_label = runs.size() > 1 ? "job (mean over its log intervals)" : "log interval ending at global step";
  for (size_t i = 0; i < runs.size(); ++i) {
    const JobRun& r = runs[i];
    const std::string color = PaletteColor(i);
    const std::string prefix = runs.size() > 1 ? r.name + " " : "";
    const auto raw = SeriesOf(r.train, "loss");
    std::vector<double> ys;
    for (const auto& pt : raw) ys.push_back(pt.second);
    const std::vector<double> smooth = Smooth(ys, 0.6);
    auto smoothed = raw;
    for (size_t k = 0; k < smoothed.size(); ++k) smoothed[k].second = smooth[k];
    // Several jobs: one legend entry each (the light line is its raw loss).
    loss.series.push_back({prefix + "raw", raw, color, 1, 0.35, runs.size() == 1});
    loss.series.push_back({runs.size() > 1 ? r.name : "smoothed (0.6)", smoothed, color, 2.5, 1});
    auc.series.push_back({r.name, SeriesOf(r.eval, "auc"), color});
    logloss.series.push_back({r.name, SeriesOf(r.eval, "logloss"), color});
    rate.series.push_back({r.name, SeriesOf(r.train, "samples_per_sec"), color});
    for (const auto& [table, points] : TableRows(r.train)) {
      rows.series.push_back({prefix + table, points, color});
    }
    std::vector<std::vector<std::pair<double, double>>> by_part;
    for (const auto& part : parts) by_part.push_back(SeriesOf(r.train, part.first));
    if (runs.size() == 1) {
      for (size_t k = 0; k < by_part[0].size(); ++k) {
        split.categories.push_back(TickLabel(by_part[0][k].first));
        for (size_t p = 0; p < parts.size(); ++p) {
          split.stacks[p].values.push_back(k < by_part[p].size() ? by_part[p][k].second : 0);
        }
      }
    } else {
      split.categories.push_back(r.name);
      for (size_t p = 0; p < parts.size(); ++p) {
        double sum = 0;
        for (const auto& pt : by_part[p]) sum += pt.second;
        split.stacks[p].values.push_back(by_part[p].empty() ? 0 : sum / by_part[p].size());
      }
    }
  }
  page += "<h2>Training</h2>\n<div class=\"charts\">\n" + RenderLineChart(loss) + RenderLineChart(rate) +
          RenderStackedBarChart(split) + RenderLineChart(rows) + "</div>\n";
  page += "<h2>Evaluation</h2>\n<div class=\"charts\">\n" + RenderLineChart(auc) +
          RenderLineChart(logloss) + "</div>\n";
  page += "<h2>Flags</h2>\n" + FlagsTable(runs);
  page += "<h2>Machine</h2>\n" + MachineTable(runs);
  page += "<p>Written by <code>deepfm report</code> from each job folder's train/ and eval/ event files, "
          "metrics.json and job.json.</p>\n</body>\n</html>\n";
  return page;
}

Status WriteReport(const std::vector<std::string>& dirs, const std::string& out_path) {
  if (dirs.empty()) return InvalidArgument("report: name at least one job folder");
  std::vector<JobRun> runs(dirs.size());
  for (size_t i = 0; i < dirs.size(); ++i) {
    Status s = LoadJobRun(dirs[i], &runs[i]);
    if (!s.ok()) return s;
  }
  return WriteFileAtomic(out_path, RenderReport(runs));
}

}  // namespace deepfm::obs

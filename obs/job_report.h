// `deepfm report`: report.html, one self-contained XHTML file (inline SVG
// and CSS, no script, nothing fetched) about one job or several overlaid:
//   - a summary table (steps, samples/s, AUC, logloss, accuracy, tables);
//   - one chart per series: training loss (raw, and smoothed as TensorBoard
//     smooths, an exponential moving average with weight 0.6), eval AUC,
//     eval logloss, samples/s, the step-time split as stacked bars, and
//     the tables' rows as they grew;
//   - the flags each job ran with (job.json) and the machine.
// It reads only the job folder's files: train/ and eval/ event files,
// metrics.json and job.json (common/report.h), whichever are there.
#pragma once

#include <string>
#include <vector>

#include "common/report.h"
#include "common/status.h"
#include "obs/event_reader.h"

namespace deepfm::obs {

struct JobRun {
  std::string name;  // the folder's last component
  std::string dir;
  std::vector<Scalar> train, eval;
  bool has_metrics = false;
  JobMetrics metrics;
  bool has_info = false;
  JobInfo info;
  std::vector<std::string> warnings;  // files missing or damaged, shown on the page
};

// Reads a job folder. Fails only when it holds none of the files a report
// is made of (not a job folder); a damaged or missing one is a warning.
Status LoadJobRun(const std::string& dir, JobRun* run);

// The page for these jobs (one or more), overlaid in one colour per job.
std::string RenderReport(const std::vector<JobRun>& runs);

// Loads every folder and writes the page to `out_path`.
Status WriteReport(const std::vector<std::string>& dirs, const std::string& out_path);

// TensorBoard's smoothing: s_i = w s_{i-1} + (1 - w) y_i, debiased by
// 1 - w^i as TensorBoard does, so the first points are not pulled to 0.
std::vector<double> Smooth(const std::vector<double>& ys, double weight);

}  // namespace deepfm::obs

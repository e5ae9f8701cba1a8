// A self-updating status line on a terminal while a job trains: the
// percentage of --steps (or of the steps its epochs take, estimated from the
// data's rows), samples/s, the time left and the chief's last loss, drawn
// on stderr from shard 0's JobStatus. When stderr is not a terminal (CI, a
// file) it draws nothing and the job prints plain lines as always.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace deepfm {

struct ProgressLine {
  int64_t step = 0;
  int64_t total = 0;           // 0: unknown (no percentage, no ETA)
  double samples_per_sec = 0;  // 0: not measured yet
  double eta_seconds = -1;     // < 0: unknown
  double loss = 0;             // NaN: none yet
};

// The line for `p`, at most `width` columns, e.g.
// "[######......]  45%  step 532/1172  33,210 samples/s  ETA 0:19  loss 0.47312".
std::string FormatProgressLine(const ProgressLine& p, int width);

class ProgressBar {
 public:
  // Draws on `fd` only if it is a terminal (or `force`, for tests).
  ProgressBar(int fd, int64_t total_steps, int64_t samples_per_step, bool force = false);
  ~ProgressBar();
  bool active() const { return active_; }
  // A new reading of the job's global step and the chief's loss: redraws.
  void Update(int64_t global_step, double loss);
  // Erases the line before other output; Redraw puts it back.
  void Clear();
  void Redraw();
  // Erases the line for good.
  void Done();

 private:
  int Width() const;
  int fd_;
  bool active_;
  bool shown_ = false;
  int64_t samples_per_step_;
  ProgressLine line_;
  std::deque<std::pair<int64_t, int64_t>> window_;  // (nanoseconds, global step) of recent readings
};

// Rows of the data files (comma-separated paths): newline count, cheap
// enough for the bar's epoch estimate (about 0.1 s per 150 MB).
int64_t CountRows(const std::string& files);

}  // namespace deepfm

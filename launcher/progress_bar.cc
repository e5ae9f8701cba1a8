#include "launcher/progress_bar.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/timing.h"

namespace deepfm {
namespace {

std::string Thousands(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string Duration(double seconds) {
  const int64_t t = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (t >= 3600) {
    snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
             static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  } else {
    snprintf(buf, sizeof(buf), "%lld:%02lld", static_cast<long long>(t / 60),
             static_cast<long long>(t % 60));
  }
  return buf;
}

void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;  // a terminal that went away: nothing to draw on
    done += static_cast<size_t>(n);
  }
}

}  // namespace

std::string FormatProgressLine(const ProgressLine& p, int width) {
  std::string tail;
  if (p.total > 0) {
    const double frac = std::min(1.0, static_cast<double>(p.step) / p.total);
    char pct[16];
    snprintf(pct, sizeof(pct), "%3d%%", static_cast<int>(frac * 100));
    tail += std::string(pct) + "  step " + Thousands(p.step) + "/" + Thousands(p.total);
  } else {
    tail += "step " + Thousands(p.step);
  }
  if (p.samples_per_sec > 0)
    tail += "  " + Thousands(std::llround(p.samples_per_sec)) + " samples/s";
  if (p.eta_seconds >= 0) tail += "  ETA " + Duration(p.eta_seconds);
  if (std::isfinite(p.loss)) {
    char loss[32];
    snprintf(loss, sizeof(loss), "  loss %.5f", p.loss);
    tail += loss;
  }
  std::string bar;
  if (p.total > 0) {
    const int cells = std::max(0, std::min(30, width - static_cast<int>(tail.size()) - 4));
    if (cells >= 5) {
      const int full =
          static_cast<int>(std::min(1.0, static_cast<double>(p.step) / p.total) * cells);
      bar = "[" + std::string(full, '#') + std::string(cells - full, '.') + "]  ";
    }
  }
  std::string line = bar + tail;
  if (static_cast<int>(line.size()) > width) line.resize(std::max(0, width));
  return line;
}

ProgressBar::ProgressBar(int fd, int64_t total_steps, int64_t samples_per_step, bool force)
    : fd_(fd), active_(force || isatty(fd)), samples_per_step_(samples_per_step) {
  line_.total = total_steps;
  line_.loss = NAN;
}

ProgressBar::~ProgressBar() { Done(); }

int ProgressBar::Width() const {
  winsize ws{};
  if (ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col - 1;
  return 100;
}

void ProgressBar::Update(int64_t global_step, double loss) {
  if (!active_) return;
  const int64_t now = NowNanos();
  window_.emplace_back(now, global_step);
  // The rate over the last 10 seconds of readings.
  while (window_.size() > 2 && now - window_.front().first > 10000000000LL) window_.pop_front();
  line_.step = global_step;
  line_.loss = loss;
  line_.samples_per_sec = 0;
  line_.eta_seconds = -1;
  if (window_.size() >= 2) {
    const double secs = (now - window_.front().first) * 1e-9;
    const int64_t steps = global_step - window_.front().second;
    if (secs > 0 && steps > 0) {
      line_.samples_per_sec = steps * samples_per_step_ / secs;
      if (line_.total > global_step) line_.eta_seconds = (line_.total - global_step) * secs / steps;
    }
  }
  Redraw();
}

void ProgressBar::Clear() {
  if (!active_ || !shown_) return;
  WriteAll(fd_, "\r\033[K");
  shown_ = false;
}

void ProgressBar::Redraw() {
  if (!active_) return;
  WriteAll(fd_, "\r\033[K" + FormatProgressLine(line_, Width()));
  shown_ = true;
}

void ProgressBar::Done() {
  Clear();
  active_ = false;
}

int64_t CountRows(const std::string& files) {
  int64_t rows = 0;
  size_t start = 0;
  while (start <= files.size()) {
    size_t comma = files.find(',', start);
    if (comma == std::string::npos) comma = files.size();
    const std::string path = files.substr(start, comma - start);
    start = comma + 1;
    if (path.empty()) continue;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    static char buf[1 << 20];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
      for (const char* p = buf;
           (p = static_cast<const char*>(memchr(p, '\n', buf + n - p))) != nullptr; ++p) {
        ++rows;
      }
    }
    close(fd);
  }
  return rows;
}

}  // namespace deepfm

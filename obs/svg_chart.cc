#include "obs/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace deepfm::obs {

namespace {

// Layout of every chart, in SVG user units.
constexpr double kWidth = 600, kHeight = 320;
constexpr double kLeft = 72, kRight = 16, kTop = 52, kBottom = 46;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;

std::string Num(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  double Map(double v, double from, double length) const {
    return from + (v - lo) / (hi - lo) * length;
  }
};

Axis MakeAxis(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = std::max(std::fabs(lo) * 0.05, 1e-6);
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.ticks = NiceTicks(lo, hi, target);
  a.lo = a.ticks.front();
  a.hi = a.ticks.back();
  return a;
}

std::string Open(const std::string& id, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-series=\"" + XmlEscape(id) +
         "\" width=\"" + Num(kWidth) + "\" height=\"" + Num(kHeight) + "\" viewBox=\"0 0 " +
         Num(kWidth) + " " + Num(kHeight) + "\" role=\"img\">\n<title>" + XmlEscape(title) +
         "</title>\n<text x=\"" + Num(kLeft) + "\" y=\"18\" class=\"title\">" + XmlEscape(title) +
         "</text>\n";
}

// Legend entries in one row under the title.
struct LegendItem {
  std::string name, color;
  double opacity = 1;
};

std::string Legend(const std::vector<LegendItem>& items) {
  std::string out;
  double x = kLeft;
  for (const auto& [name, color, opacity] : items) {
    out += "<rect x=\"" + Num(x) + "\" y=\"28\" width=\"12\" height=\"12\" fill=\"" +
           XmlEscape(color) + "\" fill-opacity=\"" + Num(opacity) + "\"/><text x=\"" + Num(x + 16) + "\" y=\"38\" class=\"legend\">" +
           XmlEscape(name) + "</text>\n";
    x += 28 + 6.5 * static_cast<double>(name.size());
  }
  return out;
}

std::string Grid(const Axis& y) {
  std::string out;
  const std::vector<std::string> labels = TickLabels(y.ticks);
  for (size_t i = 0; i < y.ticks.size(); ++i) {
    const double t = y.ticks[i];
    const double py = y.Map(t, kTop + kPlotH, -kPlotH);
    out += "<line x1=\"" + Num(kLeft) + "\" x2=\"" + Num(kLeft + kPlotW) + "\" y1=\"" + Num(py) +
           "\" y2=\"" + Num(py) + "\" class=\"grid\"/><text x=\"" + Num(kLeft - 6) + "\" y=\"" +
           Num(py + 4) + "\" class=\"tick\" text-anchor=\"end\">" + XmlEscape(labels[i]) +
           "</text>\n";
  }
  return out;
}

std::string AxisLabels(const std::string& x_label, const std::string& y_label) {
  return "<text x=\"" + Num(kLeft + kPlotW / 2) + "\" y=\"" + Num(kHeight - 8) +
         "\" class=\"axis\" text-anchor=\"middle\">" + XmlEscape(x_label) +
         "</text>\n<text transform=\"translate(14," + Num(kTop + kPlotH / 2) +
         ") rotate(-90)\" class=\"axis\" text-anchor=\"middle\">" + XmlEscape(y_label) +
         "</text>\n<rect x=\"" + Num(kLeft) + "\" y=\"" + Num(kTop) + "\" width=\"" + Num(kPlotW) +
         "\" height=\"" + Num(kPlotH) + "\" class=\"frame\"/>\n";
}

}  // namespace

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t') out += c;
    }
  }
  return out;
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  const double first = std::floor(lo / step) * step;
  const double last = std::ceil(hi / step) * step;
  std::vector<double> ticks;
  for (int i = 0;; ++i) {
    double t = first + i * step;
    if (std::fabs(t) < step * 1e-9) t = 0;  // no "-0" or 1e-17
    ticks.push_back(t);
    if (t >= last - step * 1e-9 || i > 1000) break;
  }
  return ticks;
}

std::string TickLabel(double v) {
  const double a = std::fabs(v);
  char buf[32];
  if (a >= 1e9) {
    snprintf(buf, sizeof(buf), "%.4gG", v / 1e9);
  } else if (a >= 1e6) {
    snprintf(buf, sizeof(buf), "%.4gM", v / 1e6);
  } else if (a >= 1e4) {
    snprintf(buf, sizeof(buf), "%.4gk", v / 1e3);
  } else {
    snprintf(buf, sizeof(buf), "%.4g", v);
  }
  return buf;
}

std::vector<std::string> TickLabels(const std::vector<double>& ticks) {
  double top = 0;
  for (double t : ticks) top = std::max(top, std::fabs(t));
  double unit = 1;
  const char* suffix = "";
  if (top >= 1e9) {
    unit = 1e9, suffix = "G";
  } else if (top >= 1e6) {
    unit = 1e6, suffix = "M";
  } else if (top >= 1e4) {
    unit = 1e3, suffix = "k";
  }
  const double step = ticks.size() > 1 ? std::fabs(ticks[1] - ticks[0]) / unit : 1;
  const int decimals = step > 0 ? std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12) : 0;
  std::vector<std::string> out;
  for (double t : ticks) {
    char buf[48];
    snprintf(buf, sizeof(buf), "%.*f%s", decimals, t / unit, t == 0 ? "" : suffix);
    out.push_back(buf);
  }
  return out;
}

std::string PaletteColor(size_t i) {
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                  "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string RenderLineChart(const LineChart& c) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  for (const ChartSeries& s : c.series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  }
  const Axis xa = MakeAxis(x_lo, x_hi, 6), ya = MakeAxis(y_lo, y_hi, 5);
  std::string out = Open(c.id, c.title);
  std::vector<LegendItem> legend;
  for (const ChartSeries& s : c.series) {
    if (s.in_legend) legend.push_back({s.name, s.color, s.opacity});
  }
  out += Legend(legend);
  out += Grid(ya);
  const std::vector<std::string> x_labels = TickLabels(xa.ticks);
  for (size_t i = 0; i < xa.ticks.size(); ++i) {
    out += "<text x=\"" + Num(xa.Map(xa.ticks[i], kLeft, kPlotW)) + "\" y=\"" +
           Num(kTop + kPlotH + 16) + "\" class=\"tick\" text-anchor=\"middle\">" +
           XmlEscape(x_labels[i]) + "</text>\n";
  }
  out += AxisLabels(c.x_label, c.y_label);
  for (const ChartSeries& s : c.series) {
    std::string pts;
    size_t n = 0;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts += (n++ ? " " : "") + Num(xa.Map(x, kLeft, kPlotW)) + "," + Num(ya.Map(y, kTop + kPlotH, -kPlotH));
    }
    if (n == 0) continue;
    const std::string style = "stroke=\"" + XmlEscape(s.color) + "\" stroke-width=\"" + Num(s.width) +
                              "\" stroke-opacity=\"" + Num(s.opacity) + "\"";
    out += "<polyline class=\"line\" data-name=\"" + XmlEscape(s.name) + "\" fill=\"none\" " + style +
           " points=\"" + pts + "\"/>\n";
    if (n <= 24) {
      // Few points (an evaluation at the end): each one visible.
      for (const auto& [x, y] : s.points) {
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        out += "<circle cx=\"" + Num(xa.Map(x, kLeft, kPlotW)) + "\" cy=\"" +
               Num(ya.Map(y, kTop + kPlotH, -kPlotH)) + "\" r=\"3\" fill=\"" + XmlEscape(s.color) +
               "\" fill-opacity=\"" + Num(s.opacity) + "\"><title>" + XmlEscape(s.name + ": " + TickLabel(y) + " at " + TickLabel(x)) +
               "</title></circle>\n";
      }
    }
  }
  return out + "</svg>\n";
}

std::string RenderStackedBarChart(const StackedBarChart& c) {
  const size_t n = c.categories.size();
  double top = 0;
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (const auto& s : c.stacks) sum += i < s.values.size() ? std::max(0.0, s.values[i]) : 0;
    top = std::max(top, sum);
  }
  const Axis ya = MakeAxis(0, top > 0 ? top : 1, 5);
  std::string out = Open(c.id, c.title);
  std::vector<LegendItem> legend;
  for (const auto& s : c.stacks) legend.push_back({s.name, s.color});
  out += Legend(legend);
  out += Grid(ya);
  const double slot = n > 0 ? kPlotW / n : kPlotW;
  const double bar = std::max(1.0, slot * 0.7);
  // Label at most ~12 categories so the text never overlaps.
  const size_t label_every = std::max<size_t>(1, (n + 11) / 12);
  for (size_t i = 0; i < n; ++i) {
    const double x = kLeft + slot * i + (slot - bar) / 2;
    double base = 0;
    for (const auto& s : c.stacks) {
      const double v = i < s.values.size() ? std::max(0.0, s.values[i]) : 0;
      const double y0 = ya.Map(base, kTop + kPlotH, -kPlotH), y1 = ya.Map(base + v, kTop + kPlotH, -kPlotH);
      out += "<rect class=\"bar\" x=\"" + Num(x) + "\" y=\"" + Num(y1) + "\" width=\"" + Num(bar) +
             "\" height=\"" + Num(y0 - y1) + "\" fill=\"" + XmlEscape(s.color) + "\"><title>" +
             XmlEscape(c.categories[i] + " " + s.name + ": " + TickLabel(v)) + "</title></rect>\n";
      base += v;
    }
    if (i % label_every == 0) {
      out += "<text x=\"" + Num(x + bar / 2) + "\" y=\"" + Num(kTop + kPlotH + 16) +
             "\" class=\"tick\" text-anchor=\"middle\">" + XmlEscape(c.categories[i]) + "</text>\n";
    }
  }
  out += AxisLabels(c.x_label, c.y_label);
  return out + "</svg>\n";
}

}  // namespace deepfm::obs

// Charts as inline SVG for the job report: line charts (one polyline per
// series, markers where a series has few points) and stacked bar charts.
// Pure functions of their input; the output is well-formed XML (every
// label escaped), one <svg> element carrying data-series="<id>", so a page
// or a test can find each chart.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace deepfm::obs {

struct ChartSeries {
  std::string name;                             // legend
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
  std::string color;                            // CSS colour
  double width = 2;                             // stroke width
  double opacity = 1;
  bool in_legend = true;
};

struct LineChart {
  std::string id;     // data-series
  std::string title;
  std::string x_label, y_label;
  std::vector<ChartSeries> series;
};

struct StackedBarChart {
  std::string id;
  std::string title;
  std::string x_label, y_label;
  std::vector<std::string> categories;  // one bar each, left to right
  // Each stack: a name, a colour, and one value per category (bottom first).
  struct Stack {
    std::string name, color;
    std::vector<double> values;
  };
  std::vector<Stack> stacks;
};

std::string RenderLineChart(const LineChart& chart);
std::string RenderStackedBarChart(const StackedBarChart& chart);

// About `target` round ticks (1, 2 or 5 times a power of ten apart)
// covering [lo, hi]: the first <= lo, the last >= hi.
std::vector<double> NiceTicks(double lo, double hi, int target);
// A value's label: at most 4 significant digits, k/M/G for thousands and up.
std::string TickLabel(double v);
// Labels of an axis' ticks (evenly spaced): as many decimals as the spacing
// needs, so neighbours never read the same; one k/M/G unit for the axis.
std::vector<std::string> TickLabels(const std::vector<double>& ticks);
// &, <, >, " and ' as XML entities.
std::string XmlEscape(const std::string& s);

// A colour for the i-th job or stack, from a fixed palette.
std::string PaletteColor(size_t i);

}  // namespace deepfm::obs

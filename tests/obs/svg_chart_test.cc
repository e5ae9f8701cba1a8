#include "obs/svg_chart.h"

#include <gtest/gtest.h>

#include "obs/job_report.h"

namespace deepfm::obs {
namespace {

TEST(SvgChartTest, TicksAreRoundAndCoverTheRange) {
  const auto unit = NiceTicks(0, 1, 5);
  ASSERT_EQ(unit.size(), 6u);
  for (size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], 0.2 * i, 1e-12);
  EXPECT_EQ(NiceTicks(13, 157, 6), (std::vector<double>{0, 50, 100, 150, 200}));
  EXPECT_NEAR(NiceTicks(0.4713, 0.4713 + 0.05, 5).front(), 0.47, 1e-12);
  EXPECT_NEAR(NiceTicks(0.4713, 0.4713 + 0.05, 5).back(), 0.53, 1e-12);
  const auto t = NiceTicks(-3, 7, 5);
  EXPECT_EQ(t.front(), -4);
  EXPECT_EQ(t.back(), 8);
}

TEST(SvgChartTest, AxisLabelsHaveTheDecimalsTheirSpacingNeeds) {
  EXPECT_EQ(TickLabels({0.76255, 0.7626, 0.76265}),
            (std::vector<std::string>{"0.76255", "0.76260", "0.76265"}));
  EXPECT_EQ(TickLabels({0, 50000, 100000, 150000}),
            (std::vector<std::string>{"0", "50k", "100k", "150k"}));
  EXPECT_EQ(TickLabels({0, 500, 1000}), (std::vector<std::string>{"0", "500", "1000"}));
  EXPECT_EQ(TickLabels({1.5e6, 2e6, 2.5e6}), (std::vector<std::string>{"1.5M", "2.0M", "2.5M"}));
}

TEST(SvgChartTest, LabelsAndEscaping) {
  EXPECT_EQ(TickLabel(150000), "150k");
  EXPECT_EQ(TickLabel(2500000), "2.5M");
  EXPECT_EQ(TickLabel(0.4713), "0.4713");
  EXPECT_EQ(XmlEscape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  EXPECT_EQ(XmlEscape(std::string("x\x01y")), "xy");
}

TEST(SvgChartTest, PointsLandWhereTheAxesSay) {
  // Plot area: x 72..584, y 274 (bottom) .. 52 (top); x ticks 0..10, y 0..1.
  LineChart c{"id<1>", "T & t", "x", "y", {{"s", {{0, 0}, {10, 1}, {5, 0.5}}, "#123456"}}};
  const std::string svg = RenderLineChart(c);
  EXPECT_NE(svg.find("data-series=\"id&lt;1&gt;\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("points=\"72.0,274.0 584.0,52.0 328.0,163.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("<title>T &amp; t</title>"), std::string::npos);
  EXPECT_NE(svg.find("class=\"title\">T &amp; t</text>"), std::string::npos) << svg;
  EXPECT_EQ(svg.find("T & t"), std::string::npos) << "an unescaped label: " << svg;
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
}

TEST(SvgChartTest, StackedBarsStackFromZero) {
  StackedBarChart c{"split", "t", "", "us", {"a", "b"}, {{"wait", "#111", {1, 2}}, {"compute", "#222", {3, 2}}}};
  const std::string svg = RenderStackedBarChart(c);
  // y ticks 0..4: a bar of height v spans v/4 of 222 units.
  EXPECT_NE(svg.find("y=\"218.5\" width=\"179.2\" height=\"55.5\" fill=\"#111\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("y=\"52.0\" width=\"179.2\" height=\"166.5\" fill=\"#222\""), std::string::npos) << svg;
}

TEST(SvgChartTest, SmoothingIsTensorBoardsDebiasedAverage) {
  EXPECT_EQ(Smooth({1, 1, 1}, 0.6), (std::vector<double>{1, 1, 1}));
  const auto s = Smooth({0, 10}, 0.6);
  EXPECT_DOUBLE_EQ(s[0], 0);
  EXPECT_DOUBLE_EQ(s[1], 4 / 0.64);
}

}  // namespace
}  // namespace deepfm::obs

#include "launcher/progress_bar.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

namespace deepfm {
namespace {

TEST(ProgressBarTest, TheLineShowsPercentStepsRateEtaAndLoss) {
  ProgressLine p;
  p.step = 532;
  p.total = 1172;
  p.samples_per_sec = 33210.4;
  p.eta_seconds = 19.4;
  p.loss = 0.4731234;
  EXPECT_EQ(FormatProgressLine(p, 120),
            "[#############.................]   45%  step 532/1,172  33,210 samples/s  ETA 0:19  "
            "loss 0.47312");
  p.eta_seconds = 3725;
  EXPECT_NE(FormatProgressLine(p, 120).find("ETA 1:02:05"), std::string::npos);
  // Never wider than the terminal.
  EXPECT_LE(FormatProgressLine(p, 40).size(), 40u);
  // Without a total: no bar, no percentage; without a loss yet: none shown.
  ProgressLine q;
  q.step = 50;
  q.samples_per_sec = 1000;
  q.loss = NAN;
  EXPECT_EQ(FormatProgressLine(q, 120), "step 50  1,000 samples/s");
}

TEST(ProgressBarTest, DrawsOnlyOnATerminalAndErasesItself) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  {
    ProgressBar off(fds[1], 100, 512);  // a pipe is not a terminal
    EXPECT_FALSE(off.active());
    off.Update(10, 0.5);
    ProgressBar bar(fds[1], 100, 512, /*force=*/true);
    bar.Update(10, 0.5);
    bar.Clear();
    bar.Clear();  // already erased: writes nothing
    bar.Redraw();
    bar.Done();
    bar.Update(20, 0.5);  // done: nothing more
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fds[0]);
  const std::string line = FormatProgressLine({10, 100, 0, -1, 0.5}, 100);
  const std::string erase = "\r\033[K";
  EXPECT_EQ(out, erase + line + erase + erase + line + erase);
}

TEST(ProgressBarTest, CountRowsCountsLinesOfEveryFile) {
  const std::string a = testing::TempDir() + "rows_a.csv", b = testing::TempDir() + "rows_b.csv";
  std::ofstream(a) << "1,2\n3,4\n5,6\n";
  std::ofstream(b) << "7,8\n";
  EXPECT_EQ(CountRows(a + "," + b), 4);
  EXPECT_EQ(CountRows(a), 3);
}

}  // namespace
}  // namespace deepfm

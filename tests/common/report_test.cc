// Result files round-trip through the one library that writes and reads
// them, a non-finite number survives as NaN, and a damaged file is an error
// naming the file and the field.
#include "common/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/checkpoint_manifest.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("report_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

WorkerReport Sample(int index, bool chief) {
  WorkerReport r;
  r.trainer_index = index;
  r.task = chief ? "chief:0" : "worker:" + std::to_string(index);
  r.train_rows = 1000 * (index + 1);
  r.train_seconds = 2.5 + index;
  r.local_steps = 4 + index;
  r.global_step = 9 + index;
  r.bad_lines = index;
  r.last_loss = 0.125;
  r.split_us = {{"wait", 1.5}, {"compute", 900}, {"pull", std::nan("")}};
  r.pull_bytes_per_step = 123456789012ULL;
  r.push_bytes_per_step = 7;
  r.bf16 = index == 1;
  r.dnn_isa = "avx2";
  if (chief) {
    r.has_eval = true;
    r.eval = {0.75, 0.5, 0.8125, 100, 2, 1.25};
  }
  return r;
}

TEST_F(ReportTest, WorkerReportRoundTrips) {
  const WorkerReport r = Sample(0, true);
  const std::string path = (dir_ / WorkerReportFileName(0)).string();
  EXPECT_EQ(WorkerReportFileName(3), "worker3.json");
  ASSERT_TRUE(WriteWorkerReport(path, r).ok());
  WorkerReport back;
  Status s = ReadWorkerReport(path, &back);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(back.trainer_index, 0);
  EXPECT_EQ(back.task, "chief:0");
  EXPECT_EQ(back.train_rows, 1000);
  EXPECT_EQ(back.train_seconds, 2.5);
  EXPECT_EQ(back.local_steps, 4);
  EXPECT_EQ(back.global_step, 9);
  EXPECT_EQ(back.bad_lines, 0);
  EXPECT_EQ(back.last_loss, 0.125);
  EXPECT_EQ(back.split_us.at("wait"), 1.5);
  EXPECT_EQ(back.split_us.at("compute"), 900);
  EXPECT_TRUE(std::isnan(back.split_us.at("pull")));
  EXPECT_EQ(back.pull_bytes_per_step, 123456789012ULL);
  EXPECT_EQ(back.push_bytes_per_step, 7u);
  EXPECT_FALSE(back.bf16);
  EXPECT_EQ(back.dnn_isa, "avx2");
  ASSERT_TRUE(back.has_eval);
  EXPECT_EQ(back.eval.auc, 0.75);
  EXPECT_EQ(back.eval.logloss, 0.5);
  EXPECT_EQ(back.eval.accuracy, 0.8125);
  EXPECT_EQ(back.eval.rows, 100);
  EXPECT_EQ(back.eval.bad_lines, 2);
  EXPECT_EQ(back.eval.seconds, 1.25);
  EXPECT_EQ(back.samples_per_sec(), 400);
  ASSERT_TRUE(WriteWorkerReport(path, Sample(1, false)).ok());
  ASSERT_TRUE(ReadWorkerReport(path, &back).ok());
  EXPECT_FALSE(back.has_eval);
  EXPECT_TRUE(back.bf16);
}

TEST_F(ReportTest, JobMetricsSummarizeEveryWorker) {
  const JobMetrics m = SummarizeJob({Sample(0, true), Sample(1, false), Sample(2, false)}, 4, 2);
  EXPECT_EQ(m.train_rows, 6000);
  EXPECT_EQ(m.train_seconds, 4.5);
  EXPECT_EQ(m.samples_per_sec(), 6000 / 4.5);
  EXPECT_EQ(m.bad_lines, 0 + 1 + 2 + 2);  // training lines of each, evaluation's 2
  EXPECT_EQ(m.global_step, 11);
  EXPECT_EQ(m.workers, 4);
  EXPECT_EQ(m.workers_reported, 3);
  EXPECT_EQ(m.ps, 2);
  ASSERT_TRUE(m.has_eval);
  const std::string path = (dir_ / "metrics.json").string();
  ASSERT_TRUE(WriteJobMetrics(path, m).ok());
  JobMetrics back;
  ASSERT_TRUE(ReadJobMetrics(path, &back).ok());
  EXPECT_EQ(back.eval.auc, 0.75);
  EXPECT_EQ(back.eval.rows, 100);
  EXPECT_EQ(back.train_rows, 6000);
  EXPECT_EQ(back.train_seconds, 4.5);
  EXPECT_EQ(back.workers_reported, 3);
  EXPECT_TRUE(back.has_eval);
  // Without an evaluation the metrics are null, read back as NaN.
  const JobMetrics no_eval = SummarizeJob({Sample(1, false)}, 1, 1);
  ASSERT_TRUE(WriteJobMetrics(path, no_eval).ok());
  std::string text;
  ASSERT_TRUE(ReadFile(path, &text).ok());
  EXPECT_NE(text.find("\"auc\": null"), std::string::npos) << text;
  ASSERT_TRUE(ReadJobMetrics(path, &back).ok());
  EXPECT_FALSE(back.has_eval);
  EXPECT_TRUE(std::isnan(back.eval.auc));
}

TEST_F(ReportTest, DamagedFilesAreErrorsNamingFileAndField) {
  const std::string path = (dir_ / "worker0.json").string();
  WorkerReport r;
  EXPECT_EQ(ReadWorkerReport(path, &r).code(), Code::kNotFound);
  ASSERT_TRUE(WriteFileAtomic(path, "{\"trainer_index\": 0, \"task\": ").ok());
  Status s = ReadWorkerReport(path, &r);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  ASSERT_TRUE(WriteFileAtomic(path, "{\"trainer_index\": \"zero\"}").ok());
  s = ReadWorkerReport(path, &r);
  EXPECT_NE(s.message().find("\"trainer_index\" has the wrong type"), std::string::npos)
      << s.message();
  ASSERT_TRUE(WriteFileAtomic(path, "{\"trainer_index\": 0}").ok());
  s = ReadWorkerReport(path, &r);
  EXPECT_NE(s.message().find("no \"task\""), std::string::npos) << s.message();
}

}  // namespace
}  // namespace deepfm

#include "tools/datagen.h"

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/data_reader.h"

namespace deepfm {
namespace {

using testing_util::ReadFile;
using testing_util::TempDir;

DataGenOptions SmallOptions(const std::string& dir) {
  DataGenOptions o;
  o.train_rows = 40000;
  o.eval_rows = 20000;
  o.out_dir = dir;
  return o;
}

struct ReadResult {
  int64_t rows = 0;
  int64_t bad = 0;
  double ctr = 0;
  double empty_dense = 0;  // fraction of dense cells that are 0 (empty or 0)
  Status status;
};

ReadResult ReadBack(const std::string& path) {
  ReaderOptions o;
  o.files = {path};
  o.strict = true;
  BatchReader reader(o);
  ReadResult r;
  r.status = reader.Start();
  if (!r.status.ok()) return r;
  Batch batch;
  double clicks = 0, zeros = 0;
  while (reader.Next(&batch)) {
    for (int i = 0; i < batch.size; ++i) clicks += batch.labels[i];
    for (float x : batch.dense) zeros += x == 0.0f;
  }
  r.status = reader.status();
  r.rows = reader.rows();
  r.bad = reader.bad_lines();
  r.ctr = clicks / std::max<int64_t>(r.rows, 1);
  r.empty_dense = zeros / std::max<int64_t>(r.rows * CriteoSpec()->num_numeric(), 1);
  return r;
}

TEST(DataGenTest, WritesReadableDataWithSaneLabelsAndOracle) {
  TempDir tmp;
  const std::string dir = tmp.path();
  DataGenReport report;
  Status s = GenerateCriteoData(SmallOptions(dir), &report);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(report.train_path, dir + "/train.csv");
  EXPECT_EQ(report.eval_path, dir + "/eval.csv");

  const ReadResult train = ReadBack(report.train_path);
  const ReadResult eval = ReadBack(report.eval_path);
  ASSERT_TRUE(train.status.ok()) << train.status.ToString();
  ASSERT_TRUE(eval.status.ok()) << eval.status.ToString();
  EXPECT_EQ(train.rows, 40000);
  EXPECT_EQ(eval.rows, 20000);
  EXPECT_EQ(train.bad + eval.bad, 0);
  EXPECT_NEAR(train.ctr, report.train_ctr, 1e-9);
  EXPECT_NEAR(eval.ctr, report.eval_ctr, 1e-9);
  EXPECT_GT(report.train_ctr, 0.22);
  EXPECT_LT(report.train_ctr, 0.28);
  EXPECT_GT(report.oracle_auc, 0.70);
  EXPECT_LT(report.oracle_auc, 0.85);
  EXPECT_GT(report.oracle_logloss, 0.3);
  EXPECT_LT(report.oracle_logloss, 0.57);  // below the constant-CTR predictor's ~0.56
  // Empty values occur at Criteo-like rates.
  EXPECT_GT(train.empty_dense, 0.1);
  EXPECT_LT(train.empty_dense, 0.6);
  const std::string text = ReadFile(report.train_path);
  EXPECT_NE(text.find(",,"), std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_NE(entry.path().extension(), ".tmp") << "temporary file left behind: " << entry.path();
  }
  std::printf("datagen: %.2f s, ctr %.4f, oracle AUC %.4f, oracle logloss %.4f\n", report.seconds,
              report.train_ctr, report.oracle_auc, report.oracle_logloss);
}

TEST(DataGenTest, DeterministicInSeed) {
  TempDir tmp;
  const std::string dir = tmp.path();
  DataGenOptions o = SmallOptions(dir + "/a");
  o.train_rows = 3000;
  o.eval_rows = 1000;
  DataGenReport ra, rb, rc;
  ASSERT_TRUE(GenerateCriteoData(o, &ra).ok());
  o.out_dir = dir + "/b";
  ASSERT_TRUE(GenerateCriteoData(o, &rb).ok());
  o.out_dir = dir + "/c";
  o.seed += 1;
  ASSERT_TRUE(GenerateCriteoData(o, &rc).ok());
  EXPECT_EQ(ReadFile(ra.train_path), ReadFile(rb.train_path));
  EXPECT_EQ(ReadFile(ra.eval_path), ReadFile(rb.eval_path));
  EXPECT_EQ(ra.oracle_auc, rb.oracle_auc);
  EXPECT_NE(ReadFile(ra.train_path), ReadFile(rc.train_path));
}

TEST(DataGenTest, TsvFormatIsAutoDetected) {
  TempDir tmp;
  const std::string dir = tmp.path();
  DataGenOptions o = SmallOptions(dir);
  o.train_rows = 2000;
  o.eval_rows = 500;
  o.format = DataGenOptions::kTsv;
  o.cardinalities = {1000};
  DataGenReport report;
  ASSERT_TRUE(GenerateCriteoData(o, &report).ok());
  EXPECT_EQ(report.train_path, dir + "/train.txt");
  EXPECT_NE(ReadFile(report.train_path).find('\t'), std::string::npos);
  const ReadResult r = ReadBack(report.train_path);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.rows, 2000);
}

TEST(DataGenTest, RejectsBadOptions) {
  DataGenOptions o;
  DataGenReport report;
  EXPECT_FALSE(GenerateCriteoData(o, &report).ok());  // no out_dir
  TempDir tmp;
  o.out_dir = tmp.path();
  o.cardinalities = {10, 20};
  EXPECT_FALSE(GenerateCriteoData(o, &report).ok());
}

}  // namespace
}  // namespace deepfm

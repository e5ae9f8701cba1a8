// End to end with the real `deepfm` program: train.py's exact network (the
// elm_exact preset: batch norm, vector FM, weightless linear part, final
// DNN, MSE) as a job of two shards and two workers, and its batch
// normalisation statistics, which live on the shards, the same bit for bit
// whether the job runs stand-alone or as a shard process and a worker at
// --staleness=0. Results come from metrics.json and the checkpoints, never
// from printed lines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "tests/support/deepfm_command.h"
#include "tests/support/process.h"
#include "ps/checkpoint.h"
#include "ps/shard.h"

namespace {

namespace fs = std::filesystem;

using Result = deepfm::testing_util::ShellResult;

using deepfm::testing_util::Deepfm;

struct Dense {
  std::vector<float> values;
  deepfm::ps::DenseUpdate update;
};

// Every dense variable of a job's latest checkpoint, whole (restored onto
// one shard, whatever the job's shard count).
std::map<std::string, Dense> LatestDense(const fs::path& job, int* file_version) {
  std::string folder;
  EXPECT_TRUE(deepfm::LatestCheckpoint(job.string(), &folder).ok()) << job;
  deepfm::Manifest m;
  EXPECT_TRUE(deepfm::ReadAndVerifyManifest(folder, &m).ok()) << folder;
  *file_version = -1;
  for (const auto& f : m.files) {
    std::string bytes;
    EXPECT_TRUE(deepfm::ReadFile((fs::path(folder) / f.name).string(), &bytes).ok());
    const int v = bytes.size() >= 8 ? bytes[7] - '0' : -1;
    EXPECT_TRUE(*file_version == -1 || *file_version == v) << "files of two versions";
    *file_version = v;
  }
  deepfm::ps::ShardOptions so;
  so.shard_index = 0;
  so.num_shards = 1;
  EXPECT_TRUE(deepfm::ps::ParseOptimizerType(m.optimizer, &so.optimizer.type).ok()) << m.optimizer;
  deepfm::Status s;
  auto shard = deepfm::ps::Shard::Create(so, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  uint64_t rows = 0;
  s = deepfm::ps::RestoreShard(&shard, folder, &rows);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::map<std::string, Dense> out;
  shard->dense().ForEach([&](uint32_t, const deepfm::ps::DenseVariable& v) {
    out[v.name] = {v.values, v.update};
  });
  return out;
}

bool IsMoving(const std::string& name) {
  return name.find("/moving_mean") != std::string::npos ||
         name.find("/moving_variance") != std::string::npos;
}

class ElmExactJobTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("deepfm_elm_exact_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    const Result r = Deepfm("gen-data --feature_spec=elm --rows=6000 --eval_rows=1500 --seed=3 --out=" +
                            (*root_ / "data").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path* root_;
};
fs::path* ElmExactJobTest::root_ = nullptr;

constexpr char kSmall[] = " --feature_spec=elm_exact --hidden_units=32,16 --batch_size=128 --seed=9";

TEST_F(ElmExactJobTest, TheExactNetworkTrainsOnTwoShardsAndTwoWorkers) {
  const fs::path job = *root_ / "job_2x2";
  const Result r = Deepfm("train --data_location=" + (*root_ / "data").string() + " --checkpoint=" +
                          job.string() + " --ps_num=2 --worker_num=2" + kSmall);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  deepfm::JobMetrics m;
  ASSERT_TRUE(deepfm::ReadJobMetrics((job / "metrics.json").string(), &m).ok());
  EXPECT_EQ(m.train_rows, 6000);
  EXPECT_EQ(m.workers, 2);
  EXPECT_EQ(m.ps, 2);
  EXPECT_EQ(m.eval.rows, 1500);
  EXPECT_TRUE(std::isfinite(m.eval.logloss) && m.eval.auc > 0 && m.eval.auc < 1) << m.eval.auc;
  int version = 0;
  const std::map<std::string, Dense> dense = LatestDense(job, &version);
  EXPECT_EQ(version, deepfm::ps::kShardFileVersion) << "moving averages need version 5";
  // 32,16 then the final 128,64: four BN layers of two statistics each.
  int moving = 0;
  for (const auto& [name, d] : dense) {
    EXPECT_EQ(d.update.moving_average, IsMoving(name)) << name;
    if (!IsMoving(name)) continue;
    ++moving;
    EXPECT_FLOAT_EQ(d.update.momentum, 0.99f) << name;
    const bool variance = name.find("variance") != std::string::npos;
    double moved = 0;
    for (float v : d.values) {
      EXPECT_TRUE(std::isfinite(v)) << name;
      if (variance) {
        EXPECT_GE(v, 0.0f) << name;
      }
      moved = std::max(moved, std::abs(v - (variance ? 1.0 : 0.0)));
    }
    EXPECT_GT(moved, 1e-3) << name << " never left its initial value";
  }
  EXPECT_EQ(moving, 8);
  EXPECT_EQ(dense.count("linear/w_dense"), 0u) << "the linear part is weightless";
  EXPECT_EQ(dense.count("final_dnn/out/kernel"), 1u);
}

TEST_F(ElmExactJobTest, StandAloneAndOneShardOneWorkerAtStalenessZeroGiveTheSameMovingStatistics) {
  std::map<std::string, Dense> runs[2];
  const char* modes[2] = {" --standalone", " --ps_num=1"};
  for (int i = 0; i < 2; ++i) {
    const fs::path job = *root_ / ("job_same_" + std::to_string(i));
    const Result r = Deepfm("train --data_location=" + (*root_ / "data").string() + " --checkpoint=" +
                            job.string() + " --staleness=0 --steps=30 --no_eval" + modes[i] + kSmall);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    int version = 0;
    runs[i] = LatestDense(job, &version);
  }
  int compared = 0;
  for (const auto& [name, d] : runs[0]) {
    ASSERT_EQ(runs[1].count(name), 1u) << name;
    const std::vector<float>& other = runs[1].at(name).values;
    ASSERT_EQ(d.values.size(), other.size()) << name;
    EXPECT_EQ(std::memcmp(d.values.data(), other.data(), other.size() * sizeof(float)), 0)
        << name << " differs between the stand-alone and the 1x1 job";
    compared += IsMoving(name);
  }
  EXPECT_EQ(compared, 8);
}

// A job with batch norm resumes, onto another shard count and stand-alone:
// the restored moving statistics register again as moving averages (a
// mismatch would refuse the trainer) and go on moving.
TEST_F(ElmExactJobTest, AJobWithBatchNormResumesOntoAnotherShardCount) {
  const fs::path job = *root_ / "job_resume";
  const std::string common = "train --data_location=" + (*root_ / "data").string() +
                             " --checkpoint=" + job.string() + " --no_eval" + kSmall;
  Result r = Deepfm(common + " --steps=10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int version = 0;
  const std::map<std::string, Dense> at10 = LatestDense(job, &version);
  r = Deepfm(common + " --steps=20 --ps_num=2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Deepfm(common + " --steps=30 --standalone");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  deepfm::JobMetrics m;
  ASSERT_TRUE(deepfm::ReadJobMetrics((job / "metrics.json").string(), &m).ok());
  EXPECT_EQ(m.global_step, 30);
  const std::map<std::string, Dense> at30 = LatestDense(job, &version);
  EXPECT_EQ(version, deepfm::ps::kShardFileVersion);
  int moved = 0;
  for (const auto& [name, d] : at30) {
    if (!IsMoving(name)) continue;
    EXPECT_TRUE(d.update.moving_average) << name;
    moved += d.values != at10.at(name).values;
  }
  EXPECT_EQ(moved, 8) << "every moving statistic went on moving after the resumes";
}

}  // namespace

// End to end with the real `deepfm` program: the elm preset's job on
// generated ELM data over two shards, a user's own headered CSV trained from
// a spec file with no code change (the README's worked example), and a
// resume under another spec refused. Results come from metrics.json and the
// job folder, never from printed lines; output is only searched for the
// error a user would read.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "tests/support/deepfm_command.h"
#include "tests/support/process.h"
#include "spec/feature_spec.h"

namespace {

namespace fs = std::filesystem;

using Result = deepfm::testing_util::ShellResult;

using deepfm::testing_util::Deepfm;

deepfm::JobMetrics Metrics(const fs::path& job) {
  deepfm::JobMetrics m;
  const deepfm::Status s = deepfm::ReadJobMetrics((job / "metrics.json").string(), &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

// The README's "Your own data" spec: a header, an id to ignore, the label in
// the third column, a log-scaled price with a default, a city, and a list of
// tags pooled with sqrtn, each in its own table.
constexpr char kUserSpec[] = R"pb(
name: "shop_visits"
layout { separator: "," header: true }
columns { name: "visit_id" ignored { } }
columns { name: "price" numeric { default_value: 10 transform: LOG1P } }
columns { name: "clicked" label { } }
columns { name: "city" categorical { drop_empty: true } }
columns { name: "tags" list { separator: "|" combiner: SQRTN max_length: 8 } }
tables { name: "city" dim: 8 columns: "city" }
tables { name: "tags" dim: 8 columns: "tags" }
model { hidden_units: [32, 16] }
)pb";

class FeatureSpecJobTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("deepfm_spec_e2e_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "user");
    // A user's CSV whose clicks depend on the city and on one tag.
    std::mt19937 rng(17);
    for (const char* name : {"train.csv", "eval.csv"}) {
      std::ofstream out(*root_ / "user" / name);
      out << "visit_id,price,clicked,city,tags\n";
      const int rows = std::string(name) == "train.csv" ? 12000 : 3000;
      for (int i = 0; i < rows; ++i) {
        const int city = static_cast<int>(rng() % 20);
        const int tag = static_cast<int>(rng() % 30);
        const bool hot = city < 4 || tag == 7;
        const bool clicked = std::uniform_real_distribution<double>(0, 1)(rng) < (hot ? 0.6 : 0.1);
        out << "v" << i << "," << (i % 7 == 0 ? "" : std::to_string(5 + i % 40)) << ","
            << clicked << "," << (i % 50 == 0 ? "" : "city" + std::to_string(city)) << ",t" << tag
            << "|t" << (tag + 1) % 30 << "\n";
      }
    }
    std::ofstream(*root_ / "user" / "spec.pbtxt") << kUserSpec;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path* root_;
};
fs::path* FeatureSpecJobTest::root_ = nullptr;

TEST_F(FeatureSpecJobTest, TheElmPresetTrainsOnTwoShards) {
  const fs::path data = *root_ / "elm";
  Result r = Deepfm("gen-data --feature_spec=elm --rows=8000 --eval_rows=2000 --seed=3 --out=" +
                    data.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path job = *root_ / "elm_job";
  // No --feature_spec: 39 columns are the elm preset.
  r = Deepfm("train --data_location=" + data.string() + " --checkpoint=" + job.string() +
             " --ps_num=2 --hidden_units=32,16 --batch_size=256 --learning_rate=0.01");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const deepfm::JobMetrics m = Metrics(job);
  EXPECT_EQ(m.train_rows, 8000);
  EXPECT_EQ(m.eval.rows, 2000);
  EXPECT_EQ(m.bad_lines, 0);
  EXPECT_EQ(m.tables.size(), 15u) << "every table of the spec, summed over both shards";
  // The preset's raw numeric inputs (train.py's) learn little in 31 steps;
  // learning is checked with log1p inputs in tests/integration/elm_train_test.
  EXPECT_TRUE(std::isfinite(m.eval.logloss)) << m.eval.logloss;
  deepfm::FeatureSpecPtr kept, elm;
  std::string text;
  ASSERT_TRUE(deepfm::ReadFile((job / "feature_spec.pbtxt").string(), &text).ok());
  ASSERT_TRUE(deepfm::FeatureSpec::Parse(text, "kept", &kept).ok());
  ASSERT_TRUE(deepfm::FeatureSpec::Load("elm", &elm).ok());
  EXPECT_EQ(kept->fingerprint(), elm->fingerprint());
  std::string folder;
  ASSERT_TRUE(deepfm::LatestCheckpoint(job.string(), &folder).ok());
  deepfm::Manifest manifest;
  ASSERT_TRUE(deepfm::ReadAndVerifyManifest(folder, &manifest).ok());
  EXPECT_EQ(manifest.feature_spec, elm->fingerprint());
}

TEST_F(FeatureSpecJobTest, AUsersHeaderedCsvTrainsFromASpecFile) {
  const fs::path user = *root_ / "user";
  const fs::path job = *root_ / "user_job";
  const Result r = Deepfm("train --standalone --data_location=" + user.string() +
                          " --feature_spec=" + (user / "spec.pbtxt").string() +
                          " --checkpoint=" + job.string() + " --batch_size=128 --learning_rate=0.01");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const deepfm::JobMetrics m = Metrics(job);
  EXPECT_EQ(m.train_rows, 12000) << "the header is no row";
  EXPECT_EQ(m.eval.rows, 3000);
  EXPECT_EQ(m.bad_lines, 0);
  EXPECT_EQ(m.tables.size(), 2u);
  EXPECT_GT(m.eval.auc, 0.75) << "the clicks follow the city and a tag";
}

TEST_F(FeatureSpecJobTest, AResumeUnderAnotherSpecIsRefusedNamingTheDifference) {
  const fs::path user = *root_ / "user";
  const fs::path job = *root_ / "resume_job";
  Result r = Deepfm("train --data_location=" + user.string() + " --feature_spec=" +
                    (user / "spec.pbtxt").string() + " --checkpoint=" + job.string() +
                    " --steps=20 --batch_size=128 --no_eval");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string changed = kUserSpec;
  changed.replace(changed.find("combiner: SQRTN"), 15, "combiner: MEAN");
  std::ofstream(*root_ / "changed.pbtxt") << changed;
  r = Deepfm("train --data_location=" + user.string() + " --feature_spec=" +
             (*root_ / "changed.pbtxt").string() + " --checkpoint=" + job.string() +
             " --steps=40 --batch_size=128 --no_eval");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("was trained under another feature spec"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("combiner"), std::string::npos) << "the difference is named\n" << r.output;
  // The same spec resumes.
  r = Deepfm("train --data_location=" + user.string() + " --feature_spec=" +
             (user / "spec.pbtxt").string() + " --checkpoint=" + job.string() +
             " --steps=40 --batch_size=128 --no_eval");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Metrics(job).global_step, 40);
}

TEST_F(FeatureSpecJobTest, DataOfNoKnownLayoutNamesTheFlag) {
  const fs::path odd = *root_ / "odd";
  fs::create_directories(odd);
  std::ofstream(odd / "train.csv") << "1,2,3,4,5\n";
  std::ofstream(odd / "eval.csv") << "1,2,3,4,5\n";
  const Result r = Deepfm("train --data_location=" + odd.string() + " --checkpoint=" +
                          (*root_ / "odd_job").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("5 columns"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--feature_spec=PATH"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(*root_ / "odd_job")) << "refused before the job folder was made";
}

}  // namespace

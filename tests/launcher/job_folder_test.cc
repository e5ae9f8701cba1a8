// Jobs started in the same second get folders of their own.
#include "launcher/job_folder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

namespace deepfm::launcher {
namespace {

namespace fs = std::filesystem;

class JobFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("job_folder_" + std::to_string(getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(JobFolderTest, SameTimestampGivesDifferentFolders) {
  const std::string parent = (root_ / "result").string();  // created on demand
  std::string a, b, c;
  ASSERT_TRUE(CreateFreshJobFolder(parent, "model_DeepFM_20260101120000", &a).ok());
  ASSERT_TRUE(CreateFreshJobFolder(parent, "model_DeepFM_20260101120000", &b).ok());
  ASSERT_TRUE(CreateFreshJobFolder(parent, "model_DeepFM_20260101120000", &c).ok());
  EXPECT_EQ(a, parent + "/model_DeepFM_20260101120000");
  EXPECT_EQ(b, parent + "/model_DeepFM_20260101120000-2");
  EXPECT_EQ(c, parent + "/model_DeepFM_20260101120000-3");
  for (const std::string& f : {a, b, c}) EXPECT_TRUE(fs::is_directory(f)) << f;
}

// Launchers racing in one second: each gets its own folder.
TEST_F(JobFolderTest, ConcurrentCreatorsNeverShareAFolder) {
  const std::string parent = root_.string();
  constexpr int kJobs = 8;
  std::vector<std::string> folders(kJobs);
  std::vector<std::thread> threads;
  for (int i = 0; i < kJobs; ++i) {
    threads.emplace_back(
        [&, i] { EXPECT_TRUE(CreateFreshJobFolder(parent, "model_DeepFM_x", &folders[i]).ok()); });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(folders.begin(), folders.end()).size(), size_t{kJobs});
}

TEST_F(JobFolderTest, AnErrorNamesTheFolder) {
  fs::create_directories(root_);
  std::ofstream(root_ / "file") << "not a folder";
  std::string folder;
  const Status s = CreateFreshJobFolder((root_ / "file").string(), "model_DeepFM_x", &folder);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find((root_ / "file").string()), std::string::npos) << s.message();
}

}  // namespace
}  // namespace deepfm::launcher

// Which checkpoint a ps task restores: the latest, the one
// --restore_checkpoint names, or, when the latest is damaged, an error naming
// the newest good one (or that one itself during automatic recovery).
#include "ps/ps_task.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/checkpoint_manifest.h"
#include "ps/checkpoint.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

class PsTaskRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("ps_task_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    options_.shard.num_shards = 1;
    options_.shard.optimizer.type = OptimizerType::kAdagrad;
    options_.server.checkpoint_root = root_.string();
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Shard> NewShard() {
    Status s;
    auto shard = Shard::Create(options_.shard, &s);
    EXPECT_TRUE(shard) << s.ToString();
    return shard;
  }
  // Saves an empty shard as ckpt-<step> and commits it.
  void Save(int64_t step) {
    auto shard = NewShard();
    const fs::path tmp = root_ / (CheckpointFolderName(step) + ".tmp");
    fs::create_directories(tmp);
    Manifest m;
    m.global_step = step;
    m.num_shards = 1;
    m.num_slots = shard->options().num_slots;
    m.optimizer = OptimizerName(options_.shard.optimizer.type);
    CheckpointFile f;
    uint64_t rows = 0;
    ASSERT_TRUE(SaveShard(*shard, tmp.string(), step, &f, &rows).ok());
    m.files.push_back(f);
    ASSERT_TRUE(CommitCheckpoint(root_.string(), tmp.string(), m, 0).ok());
  }
  void Corrupt(int64_t step) {
    const fs::path file = root_ / CheckpointFolderName(step) / ShardFileName(0, 1);
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(fs::file_size(file) / 2);
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(~c));
  }
  // Restores as options_ say; returns the step restored (-1: none).
  Status Restore(int64_t* step, std::string* from) {
    auto shard = NewShard();
    uint64_t rows = 0;
    Status s = RestoreTaskShard(options_, &shard, from, &rows);
    *step = from->empty() ? -1 : shard->restored_global_step();
    return s;
  }

  fs::path root_;
  PsTaskOptions options_;
};

TEST_F(PsTaskRestoreTest, RestoresTheLatestOrNothing) {
  int64_t step;
  std::string from;
  ASSERT_TRUE(Restore(&step, &from).ok());
  EXPECT_EQ(step, -1);  // nothing saved yet: a fresh start
  Save(10);
  Save(20);
  ASSERT_TRUE(Restore(&step, &from).ok());
  EXPECT_EQ(step, 20);
  EXPECT_EQ(from, (root_ / "ckpt-20").string());
  options_.restore = false;
  ASSERT_TRUE(Restore(&step, &from).ok());
  EXPECT_EQ(step, -1);
}

TEST_F(PsTaskRestoreTest, RestoresTheCheckpointTheFlagNames) {
  Save(10);
  Save(20);
  options_.restore_checkpoint = "ckpt-10";
  int64_t step;
  std::string from;
  Status s = Restore(&step, &from);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(step, 10);
  // Even when the latest is damaged: that is what the flag is for.
  Corrupt(20);
  ASSERT_TRUE(Restore(&step, &from).ok());
  EXPECT_EQ(step, 10);

  options_.restore_checkpoint = "ckpt-15";
  s = Restore(&step, &from);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find((root_ / "ckpt-15").string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--restore_checkpoint=ckpt-15"), std::string::npos) << s.message();
  options_.restore_checkpoint = "../elsewhere";
  s = Restore(&step, &from);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("ckpt-<step>"), std::string::npos) << s.message();
  // A damaged one named by hand is refused too.
  options_.restore_checkpoint = "ckpt-20";
  s = Restore(&step, &from);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(step, -1);
}

TEST_F(PsTaskRestoreTest, ADamagedLatestIsRefusedNamingTheNewestGoodOne) {
  Save(10);
  Save(20);
  Save(30);
  Corrupt(30);
  int64_t step;
  std::string from;
  Status s = Restore(&step, &from);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(step, -1);
  EXPECT_NE(s.message().find("Refusing to resume from " + (root_ / "ckpt-30").string()),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("--restore_checkpoint=ckpt-20"), std::string::npos) << s.message();
}

TEST_F(PsTaskRestoreTest, ADamagedPointerIsRefusedNamingTheNewestGoodOne) {
  Save(10);
  std::ofstream(root_ / "checkpoint") << "garbage\n";
  int64_t step;
  std::string from;
  Status s = Restore(&step, &from);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("--restore_checkpoint=ckpt-10"), std::string::npos) << s.message();
}

TEST_F(PsTaskRestoreTest, AutomaticRecoveryFallsBackToTheNewestGoodOneLoudly) {
  Save(10);
  Save(20);
  Save(30);
  Corrupt(30);
  options_.fall_back_to_good_checkpoint = true;
  int64_t step;
  std::string from;
  ::testing::internal::CaptureStderr();
  Status s = Restore(&step, &from);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(step, 20);
  EXPECT_EQ(from, (root_ / "ckpt-20").string());
  // A line of its own for people, besides the log.
  const size_t line = err.find(options_.name + ": WARNING: ");
  ASSERT_NE(line, std::string::npos) << err;
  const std::string said = err.substr(line, err.find('\n', line) - line);
  EXPECT_NE(said.find((root_ / "ckpt-30").string()), std::string::npos) << said;
  EXPECT_NE(said.find((root_ / "ckpt-20").string()), std::string::npos) << said;
  // With nothing good left it still refuses.
  Corrupt(20);
  Corrupt(10);
  s = Restore(&step, &from);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("No other checkpoint"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace deepfm::ps

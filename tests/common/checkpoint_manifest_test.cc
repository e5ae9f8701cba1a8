#include "common/checkpoint_manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/crc32c.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  const std::string a(1000, 'x');
  EXPECT_EQ(Crc32cExtend(Crc32c(a.data(), 333), a.data() + 333, 667), Crc32c(a.data(), 1000));
}

TEST(ManifestTest, RoundTripsAndRejectsTruncation) {
  Manifest m;
  m.global_step = 42;
  m.num_shards = 2;
  m.num_slots = 4096;
  m.optimizer = "adamasync";
  m.batch_size = 512;
  m.num_workers = 1;
  m.files = {{"shard-0-of-2.bin", 10, 7}, {"shard-1-of-2.bin", 11, 8}};
  Manifest back;
  ASSERT_TRUE(Manifest::Parse(m.Serialize(), "M", &back).ok());
  EXPECT_EQ(back.global_step, 42);
  EXPECT_EQ(back.num_shards, 2u);
  EXPECT_EQ(back.num_slots, 4096u);
  EXPECT_EQ(back.optimizer, "adamasync");
  EXPECT_EQ(back.batch_size, 512);
  EXPECT_EQ(back.num_workers, 1);
  ASSERT_EQ(back.files.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back.files[i].name, m.files[i].name);
    EXPECT_EQ(back.files[i].bytes, m.files[i].bytes);
    EXPECT_EQ(back.files[i].crc32c, m.files[i].crc32c);
  }
  // The text itself is a format (the golden checkpoint pins one too).
  EXPECT_EQ(m.Serialize(),
            "deepfm-checkpoint 1\nglobal_step 42\nnum_shards 2\nnum_slots 4096\noptimizer adamasync\n"
            "batch_size 512\nnum_workers 1\nfile shard-0-of-2.bin 10 7\nfile shard-1-of-2.bin 11 8\nend\n");
  const std::string text = m.Serialize();
  EXPECT_EQ(Manifest::Parse(text.substr(0, text.size() - 5), "M", &back).code(), Code::kDataLoss);
  EXPECT_FALSE(Manifest::Parse("garbage\n", "M", &back).ok());
}

TEST(ManifestTest, CommitVerifyAndKeepMax) {
  const fs::path root = fs::temp_directory_path() / ("ckpt_test_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  for (int step : {10, 20, 30}) {
    const fs::path tmp = root / (CheckpointFolderName(step) + ".tmp");
    fs::create_directories(tmp);
    const std::string payload = "rows of step " + std::to_string(step);
    ASSERT_TRUE(WriteFileAtomic((tmp / ShardFileName(0, 1)).string(), payload).ok());
    Manifest m;
    m.global_step = step;
    m.num_shards = 1;
    m.num_slots = 16;
    m.optimizer = "adam";
    m.files = {{ShardFileName(0, 1), payload.size(), Crc32c(payload.data(), payload.size())}};
    ASSERT_TRUE(CommitCheckpoint(root.string(), tmp.string(), m, 2).ok());
  }
  EXPECT_FALSE(fs::exists(root / "ckpt-10"));
  EXPECT_TRUE(fs::exists(root / "ckpt-20"));
  std::string latest;
  ASSERT_TRUE(LatestCheckpoint(root.string(), &latest).ok());
  EXPECT_EQ(fs::path(latest).filename(), "ckpt-30");
  Manifest m;
  ASSERT_TRUE(ReadAndVerifyManifest(latest, &m).ok());
  // Flip one byte: the checksum catches it and the message names the file.
  {
    std::fstream f((fs::path(latest) / ShardFileName(0, 1)), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('#');
  }
  Status s = ReadAndVerifyManifest(latest, &m);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find(ShardFileName(0, 1)), std::string::npos) << s.message();
  // Truncation too.
  fs::resize_file(fs::path(latest) / ShardFileName(0, 1), 4);
  s = ReadAndVerifyManifest(latest, &m);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  fs::remove_all(root);
}

}  // namespace
}  // namespace deepfm

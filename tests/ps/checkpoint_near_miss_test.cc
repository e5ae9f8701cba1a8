// Checkpoint checks tried with inputs that are wrong in the least way: one
// bit of the shard file flipped at its first, a middle and its last byte,
// the file one byte short or one byte long, the format version one above
// what this build writes or one below what it reads, the manifest's
// recorded size and checksum off by one, its version off by one. Each is
// refused before anything is restored; the file as written restores.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "common/bytes.h"
#include "common/checkpoint_manifest.h"
#include "common/crc32c.h"
#include "common/hash.h"
#include "ps/checkpoint.h"
#include "tests/support/ps_fixtures.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Shard> TrainedShard() {
  ShardOptions o;
  o.optimizer.type = OptimizerType::kAdagrad;
  Status s;
  auto shard = Shard::Create(o, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  testing_util::AddTable(*shard, "emb", 4);
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 50; ++k) keys.push_back(Mix64(k + 1));
  testing_util::PushKeys(*shard, 1, keys, std::vector<float>(keys.size() * 4, 0.25f));
  return shard;
}

std::string Read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void Write(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class CheckpointNearMissTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ckpt_near_miss_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    auto shard = TrainedShard();
    folder_ = testing_util::SaveAndCommit(*shard, root_, 0, "adagrad").folder;
    file_ = fs::path(folder_) / ShardFileName(0, 1);
    good_file_ = Read(file_);
    good_manifest_ = Read(fs::path(folder_) / "MANIFEST");
  }
  void TearDown() override { fs::remove_all(root_); }

  enum Layer { kBoth, kManifestOnly, kShardFileOnly };
  // Verifies and restores after `damage` changed the checkpoint, then puts
  // it back. Each layer checks on its own: the manifest's verification
  // (sizes and checksums against the files) and the shard file's reader.
  Status RestoreDamaged(const std::function<void()>& damage, Layer layer = kBoth) {
    damage();
    ShardOptions o;
    o.optimizer.type = OptimizerType::kAdagrad;
    Status s;
    auto shard = Shard::Create(o, &s);
    uint64_t rows = 0;
    Manifest m;
    if (layer != kShardFileOnly) s = ReadAndVerifyManifest(folder_, &m);
    if (s.ok() && layer != kManifestOnly) s = RestoreShard(&shard, folder_, &rows);
    Write(file_, good_file_);
    Write(fs::path(folder_) / "MANIFEST", good_manifest_);
    return s;
  }
  // The shard file with its checksum and size made to match in the
  // manifest, so only the file's own checks stand between it and a load.
  void WriteFileAndVouchForIt(const std::string& bytes) {
    Write(file_, bytes);
    Manifest m;
    ASSERT_TRUE(Manifest::Parse(good_manifest_, "MANIFEST", &m).ok());
    m.files[0].bytes = bytes.size();
    m.files[0].crc32c = Crc32c(bytes.data(), bytes.size());
    Write(fs::path(folder_) / "MANIFEST", m.Serialize());
  }

  fs::path root_, file_;
  std::string folder_, good_file_, good_manifest_;
};

TEST_F(CheckpointNearMissTest, TheCheckpointAsWrittenRestores) {
  EXPECT_TRUE(RestoreDamaged([] {}).ok());
}

TEST_F(CheckpointNearMissTest, OneFlippedBitAnywhereIsRefused) {
  for (size_t at : {size_t{0}, good_file_.size() / 2, good_file_.size() - 1}) {
    for (int bit : {0, 7}) {
      std::string bad = good_file_;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      const Status s = RestoreDamaged([&] { Write(file_, bad); }, kManifestOnly);
      EXPECT_EQ(s.code(), Code::kDataLoss)
          << "byte " << at << " bit " << bit << ": " << s.ToString();
      EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();
      EXPECT_FALSE(RestoreDamaged([&] { Write(file_, bad); }, kShardFileOnly).ok())
          << "byte " << at << " bit " << bit;
    }
  }
}

TEST_F(CheckpointNearMissTest, OneByteShortOrLongIsRefused) {
  Status s = RestoreDamaged([&] { Write(file_, good_file_.substr(0, good_file_.size() - 1)); });
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  s = RestoreDamaged([&] { Write(file_, good_file_ + '\0'); });
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
  // With the manifest vouching for the changed file, the file's own framing
  // still refuses it: one byte short ends inside the dense records, one
  // byte more trails them.
  s = RestoreDamaged([&] { WriteFileAndVouchForIt(good_file_.substr(0, good_file_.size() - 1)); });
  EXPECT_FALSE(s.ok());
  s = RestoreDamaged([&] { WriteFileAndVouchForIt(good_file_ + '\0'); });
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("trailing"), std::string::npos) << s.message();
}

TEST_F(CheckpointNearMissTest, AManifestOffByOneIsRefused) {
  Manifest m;
  ASSERT_TRUE(Manifest::Parse(good_manifest_, "MANIFEST", &m).ok());
  for (int delta : {-1, 1}) {
    Manifest bad = m;
    bad.files[0].bytes += delta;
    Status s = RestoreDamaged([&] { Write(fs::path(folder_) / "MANIFEST", bad.Serialize()); });
    EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
    bad = m;
    bad.files[0].crc32c += delta;
    for (Layer layer : {kManifestOnly, kShardFileOnly}) {
      s = RestoreDamaged([&] { Write(fs::path(folder_) / "MANIFEST", bad.Serialize()); }, layer);
      EXPECT_EQ(s.code(), Code::kDataLoss) << "layer " << layer << ": " << s.ToString();
      EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();
    }
  }
  // The manifest's own version one off.
  for (int v : {Manifest::kVersion - 1, Manifest::kVersion + 1}) {
    std::string text = good_manifest_;
    const std::string was = "deepfm-checkpoint " + std::to_string(Manifest::kVersion);
    ASSERT_EQ(text.rfind(was, 0), 0u) << text;
    text.replace(0, was.size(), "deepfm-checkpoint " + std::to_string(v));
    const Status s = RestoreDamaged([&] { Write(fs::path(folder_) / "MANIFEST", text); });
    EXPECT_EQ(s.code(), Code::kDataLoss) << "version " << v;
  }
}

TEST_F(CheckpointNearMissTest, AFormatVersionOneOutsideWhatThisBuildReadsIsRefused) {
  const char written = good_file_[7];
  for (char v : {static_cast<char>('0' + kShardFileVersion + 1), '1'}) {
    std::string bad = good_file_;
    bad[7] = v;
    const Status s = RestoreDamaged([&] { WriteFileAndVouchForIt(bad); });
    EXPECT_EQ(s.code(), Code::kFailedPrecondition) << v << ": " << s.ToString();
    EXPECT_NE(s.message().find(std::string("format version ") + v), std::string::npos)
        << s.message();
  }
  // The magic one letter off.
  std::string bad = good_file_;
  bad[6] = static_cast<char>(bad[6] + 1);
  const Status s = RestoreDamaged([&] { WriteFileAndVouchForIt(bad); });
  EXPECT_NE(s.message().find("bad magic"), std::string::npos) << s.message();
  EXPECT_EQ(written, good_file_[7]);
}

}  // namespace
}  // namespace deepfm::ps

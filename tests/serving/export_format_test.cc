// The export file (serving/export_format.h): its bytes pinned by a golden
// file, lookups through the mapped index, and every kind of damage refused.
//
// After a deliberate format change (with kExportFormatVersion bumped):
//   DEEPFM_UPDATE_GOLDEN=1 ./build/tests/serving/serving_test --gtest_filter='ExportFormat*'
#include "serving/export_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/bf16.h"
#include "common/random.h"
#include "tests/support/slurp.h"

namespace deepfm::serving {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) { return testing_util::Slurp(p.string()); }

void Spit(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A small export: two tables (one empty), three dense variables.
ExportContents GoldenContents(bool bf16 = false) {
  ExportContents c;
  ExportMeta& m = c.meta;
  m.set_feature_spec("name: \"golden\"\n");
  m.add_hidden_units(4);
  m.set_global_step(77);
  m.set_source_checkpoint("ckpt-77");
  m.set_optimizer("adamasync");
  m.set_value_type(bf16 ? ExportMeta::BF16 : ExportMeta::FP32);
  m.set_min_frequency(2);
  const int width = 3;
  for (const char* name : {"users", "empty"}) {
    ExportTable* t = m.add_tables();
    t->set_name(name);
    t->set_width(width);
    t->set_seed(2021);
    t->set_init_stddev(0.01f);
  }
  ExportTableData users;
  for (uint64_t k = 0; k < 40; ++k) {
    users.keys.push_back(k * 0x9E3779B97F4A7C15ULL % 1000003 + k);  // not in order yet
  }
  std::sort(users.keys.begin(), users.keys.end());
  for (size_t i = 0; i < users.keys.size() * width; ++i) users.values.push_back(0.125f * i - 3.0f);
  m.mutable_tables(0)->set_rows(users.keys.size());
  m.mutable_tables(0)->set_dropped_rows(5);
  c.tables = {users, ExportTableData()};
  const std::vector<std::pair<std::string, std::vector<int64_t>>> dense = {
      {"dnn/layer0/kernel", {2, 4}}, {"dnn/layer0/bias", {4}}, {"dnn/out/bias", {1}}};
  for (const auto& [name, shape] : dense) {
    ExportDense* d = m.add_dense();
    d->set_name(name);
    int64_t n = 1;
    for (int64_t s : shape) {
      d->add_shape(s);
      n *= s;
    }
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = 0.5f * i + static_cast<float>(c.dense.size());
    c.dense.push_back(v);
  }
  return c;
}

class ExportFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("export_format_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const ExportContents& c, const std::string& name = kExportFileName) {
    const std::string p = (dir_ / name).string();
    EXPECT_TRUE(WriteExportFile(p, c).ok());
    return p;
  }
  fs::path dir_;
};

TEST_F(ExportFormatTest, BytesMatchTheGoldenFile) {
  const fs::path golden_dir =
      fs::path(DEEPFM_TESTDATA) / ("export-v" + std::to_string(kExportFormatVersion));
  const std::string path = Write(GoldenContents());
  if (std::getenv("DEEPFM_UPDATE_GOLDEN") != nullptr) {
    fs::create_directories(golden_dir);
    fs::copy_file(path, golden_dir / kExportFileName, fs::copy_options::overwrite_existing);
    GTEST_SKIP() << "wrote the golden export to " << golden_dir;
  }
  ASSERT_TRUE(fs::exists(golden_dir / kExportFileName))
      << golden_dir << " is missing: a new format version needs its golden (see the file comment)";
  const std::string now = Slurp(path), golden = Slurp(golden_dir / kExportFileName);
  ASSERT_EQ(now.size(), golden.size()) << "the export format changed: bump kExportFormatVersion";
  for (size_t i = 0; i < now.size(); ++i) {
    ASSERT_EQ(now[i], golden[i]) << "byte " << i << " differs from the golden export: the format "
                                 << "changed; bump kExportFormatVersion and write a new golden";
  }
  // And the golden file itself loads, with every value as written.
  std::unique_ptr<const ExportFile> f;
  ASSERT_TRUE(ExportFile::Open((golden_dir / kExportFileName).string(), &f).ok());
  EXPECT_EQ(f->meta().global_step(), 77);
  EXPECT_EQ(f->tables()[0].rows, 40u);
}

TEST_F(ExportFormatTest, EveryRowIsFoundAndAMissingKeyReadsItsInitialRow) {
  const ExportContents c = GoldenContents();
  std::unique_ptr<const ExportFile> f;
  ASSERT_TRUE(ExportFile::Open(Write(c), &f).ok());
  ASSERT_EQ(f->tables().size(), 2u);
  const ExportFile::Table& t = f->tables()[0];
  float row[3];
  for (size_t r = 0; r < c.tables[0].keys.size(); ++r) {
    ASSERT_EQ(t.Find(c.tables[0].keys[r]), static_cast<int64_t>(r));
    t.Lookup(c.tables[0].keys[r], row);
    for (int j = 0; j < 3; ++j) EXPECT_EQ(row[j], c.tables[0].values[r * 3 + j]);
  }
  // A key the export lacks: the trainer's initial row, bit for bit.
  const uint64_t missing = 5;
  ASSERT_EQ(t.Find(missing), -1);
  float want[3];
  InitRowNormal(missing, 2021, 0.01f, want, 3);
  t.Lookup(missing, row);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(row[j], want[j]);
  EXPECT_NE(want[0], 0.0f);
  // The empty table answers every key with its initial row too.
  EXPECT_EQ(f->tables()[1].Find(c.tables[0].keys[0]), -1);
  for (size_t d = 0; d < c.dense.size(); ++d) {
    for (size_t i = 0; i < c.dense[d].size(); ++i) EXPECT_EQ(f->dense(d)[i], c.dense[d][i]);
  }
}

TEST_F(ExportFormatTest, Bf16RowsAreRoundedToNearestEvenAndHalfTheBytes) {
  const ExportContents c = GoldenContents(/*bf16=*/true);
  ExportFileStats fp32, bf16;
  ASSERT_TRUE(WriteExportFile((dir_ / "a.dfm").string(), GoldenContents(false), &fp32).ok());
  ASSERT_TRUE(WriteExportFile((dir_ / "b.dfm").string(), c, &bf16).ok());
  EXPECT_EQ(fp32.table_bytes[0] - bf16.table_bytes[0], 40u * 3 * 2);
  std::unique_ptr<const ExportFile> f;
  ASSERT_TRUE(ExportFile::Open((dir_ / "b.dfm").string(), &f).ok());
  float row[3];
  f->tables()[0].Lookup(c.tables[0].keys[7], row);
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(row[j], Bf16ToFloat(FloatToBf16(c.tables[0].values[7 * 3 + j])));
  }
}

TEST_F(ExportFormatTest, WriterRefusesContentsThatDisagreeWithTheirMeta) {
  ExportContents c = GoldenContents();
  std::swap(c.tables[0].keys[3], c.tables[0].keys[4]);
  EXPECT_FALSE(WriteExportFile((dir_ / "x").string(), c).ok());
  c = GoldenContents();
  c.tables[0].values.pop_back();
  EXPECT_FALSE(WriteExportFile((dir_ / "x").string(), c).ok());
  c = GoldenContents();
  c.dense[1].push_back(0);
  EXPECT_FALSE(WriteExportFile((dir_ / "x").string(), c).ok());
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}

// Damage anywhere is refused as DataLoss naming what is wrong: a flipped
// byte in every section, one byte cut off, a wrong magic; the version digit
// one off is FailedPrecondition.
TEST_F(ExportFormatTest, DamageAnywhereIsRefused) {
  const std::string good = Slurp(Write(GoldenContents()));
  std::unique_ptr<const ExportFile> f;
  auto open = [&](const std::string& bytes) {
    Spit(dir_ / "bad.dfm", bytes);
    f.reset();
    return ExportFile::Open((dir_ / "bad.dfm").string(), &f);
  };
  ASSERT_TRUE(open(good).ok());
  // The section table: offsets of each section start at 16 + 32 i + 8.
  uint32_t count;
  std::memcpy(&count, good.data() + 8, 4);
  ASSERT_EQ(count, 1u + 1u + 3u * 2u);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t offset, bytes;
    std::memcpy(&offset, good.data() + 16 + 32 * i + 8, 8);
    std::memcpy(&bytes, good.data() + 16 + 32 * i + 16, 8);
    if (bytes == 0) continue;  // the empty table's keys and values
    for (uint64_t at : {offset, offset + bytes / 2, offset + bytes - 1}) {
      std::string bad = good;
      bad[at] ^= 0x01;
      const Status s = open(bad);
      EXPECT_EQ(s.code(), Code::kDataLoss) << "section " << i << " byte " << at;
      EXPECT_NE(s.message().find("fails its checksum"), std::string::npos) << s.message();
      EXPECT_EQ(f, nullptr);
    }
  }
  for (size_t at : {size_t{12}, size_t{16}, size_t{16 + 32 * 3 + 5}}) {
    std::string bad = good;
    bad[at] ^= 0x80;
    EXPECT_EQ(open(bad).code(), Code::kDataLoss) << "header byte " << at;
  }
  EXPECT_EQ(open(good.substr(0, good.size() - 1)).code(), Code::kDataLoss);
  EXPECT_NE(open(good.substr(0, good.size() - 1)).message().find("past the end"),
            std::string::npos);
  EXPECT_EQ(open(good.substr(0, 10)).code(), Code::kDataLoss);
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_EQ(open(magic).code(), Code::kDataLoss);
  std::string version = good;
  version[7] = static_cast<char>('0' + kExportFormatVersion + 1);
  const Status v = open(version);
  EXPECT_EQ(v.code(), Code::kFailedPrecondition);
  EXPECT_NE(v.message().find("version"), std::string::npos) << v.message();
}

}  // namespace
}  // namespace deepfm::serving

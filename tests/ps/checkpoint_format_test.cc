// The checkpoint format, pinned by a golden checkpoint: a tiny two-shard
// checkpoint (MANIFEST and both shard files) kept in
// tests/ps/testdata/ckpt-v<kShardFileVersion>/. Today's code must write the
// same bytes for the same state, and must read the golden back exactly, so a
// format change is always deliberate: bump kShardFileVersion, keep (or
// refuse, by name) the old version's files, and write the new golden with
//   DEEPFM_UPDATE_GOLDEN=1 ./build/tests/ps/ps_test --gtest_filter='CheckpointFormat*'
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/checkpoint_manifest.h"
#include "common/crc32c.h"
#include "common/dense_partition.h"
#include "common/hash.h"
#include "common/routing.h"
#include "ps/checkpoint.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(DEEPFM_TESTDATA) / ("ckpt-v" + std::to_string(kShardFileVersion));

// The state is set directly (no random init, no optimizer arithmetic), so the
// bytes depend on the format alone, not on libm or the compiler's float code.
// Rows: shard 0 owns Mix64(3), Mix64(4), Mix64(5); shard 1 owns Mix64(1), Mix64(2)
// (pinned by the routing golden values). Dense: linear/w_dense and
// dnn/out/bias route to shard 0, linear/bias to shard 1; with slices of at
// least 16 bytes, dnn/kernel [4, 2] (version 3 on) is cut in two, one slice
// per shard.
struct GoldenRow {
  uint64_t n;  // the key is Mix64(n)
  float values[2];
  float slots[4];  // adam: m[2], v[2]
  RowMeta meta;
};
const GoldenRow kRows[] = {
    {1, {0.5f, -1.25f}, {0.125f, -0.25f, 0.0625f, 0.03125f}, {1, 7}},
    {2, {-3.0f, 0.75f}, {0.5f, 0.5f, 1.0f, 2.0f}, {4, 40}},
    {3, {1.0f, 2.0f}, {-0.125f, 0.25f, 4.0f, 0.5f}, {2, 41}},
    {4, {0.0f, -0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}, {0, 0}},
    {5, {1e-3f, 65504.0f}, {1.5f, -1.5f, 8.0f, 16.0f}, {0xffffffffu, 42}},
};
const VariableOptState kTableState[2] = {{true, 0.5, 0.75}, {true, 0.25, 0.875}};

struct GoldenDense {
  const char* name;
  std::vector<int64_t> shape;
  std::vector<float> values;
  VariableOptState state;
  DenseUpdate update = {};
};
const GoldenDense kDense[] = {
    {"linear/w_dense", {3}, {1.0f, 2.0f, 3.0f}, {true, 0.5, 0.5}},
    {"dnn/out/bias", {1, 1}, {-0.5f}, {true, 0.125, 0.25}},
    // Not started, with powers that are not the "unset" zeros: the flag is
    // its own byte.
    {"linear/bias", {1}, {0.25f}, {false, 0.0625, 0.5}},
    {"dnn/kernel", {4, 2}, {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, 3.5f, -4.5f, 5.5f}, {true, 0.25, 0.125}},
    // Version 5 on: a moving average (batch norm's statistics), cut in two.
    {"bn/moving_mean", {6}, {0.5f, -0.25f, 3.0f, 1e-3f, 7.0f, -8.0f}, {false, 1.0, 1.0}, {true, 0.99f}},
};
constexpr int64_t kGoldenSliceBytes = 16;
// Version 4 on: keys counted by the admission filter (filter_freq 3) and not
// admitted yet, with their counts.
const std::map<uint64_t, uint32_t> kPending = {{Mix64(6), 2}, {Mix64(7), 1}};

// Whether the golden of `version` holds the variable.
bool InVersion(const GoldenDense& d, int version) {
  if (d.update.moving_average) return version >= 5;
  return version >= 3 || std::string(d.name) != "dnn/kernel";
}

std::unique_ptr<Shard> NewShard(uint32_t index, uint32_t n,
                                int64_t slice_bytes = kDefaultDenseSliceBytes) {
  ShardOptions o;
  o.ev.filter_freq = 3;
  o.ev.filter = FilterKind::kCounter;
  o.shard_index = index;
  o.num_shards = n;
  o.dense_slice_bytes = slice_bytes;
  o.optimizer.type = OptimizerType::kAdam;
  Status s;
  auto shard = Shard::Create(o, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return shard;
}

std::vector<float> DenseSlots(const GoldenDense& d) {
  std::vector<float> slots(2 * d.values.size());
  for (size_t i = 0; i < slots.size(); ++i) slots[i] = 0.125f * static_cast<float>(i + 1);
  return slots;
}

std::unique_ptr<Shard> GoldenShard(uint32_t index, int version = kShardFileVersion) {
  auto shard = NewShard(index, 2, kGoldenSliceBytes);
  RegisterTableRequest req;
  req.mutable_spec()->set_name("emb");
  req.mutable_spec()->set_dim(2);
  req.mutable_spec()->set_init_stddev(0.25f);
  req.mutable_spec()->set_seed(5);
  RegisterTableResponse resp;
  EXPECT_TRUE(shard->RegisterTable(req, &resp).ok());
  EmbeddingTable* t = shard->table(resp.table_id());
  for (const GoldenRow& r : kRows) {
    if (shard->router().ShardOfKey(Mix64(r.n)) == index)
      t->Upsert(Mix64(r.n), r.values, r.slots, r.meta);
  }
  t->set_opt_state(kTableState[index]);
  for (const auto& [key, count] : kPending) {
    if (shard->router().ShardOfKey(key) == index) t->SetPendingCount(key, count);
  }
  for (const GoldenDense& d : kDense) {
    if (!InVersion(d, version)) continue;
    const std::optional<DenseSlice> sl =
        SliceOnShard(PartitionDense(shard->router(), d.name, d.shape, kGoldenSliceBytes), index);
    if (!sl) continue;
    const std::vector<float> all_slots = DenseSlots(d);
    const int64_t n = static_cast<int64_t>(d.values.size());
    std::vector<float> values(d.values.begin() + sl->offset, d.values.begin() + sl->offset + sl->size);
    std::vector<float> slots;  // adam: the m plane's part, then the v plane's
    for (int64_t plane = 0; plane < 2; ++plane) {
      slots.insert(slots.end(), all_slots.begin() + plane * n + sl->offset,
                   all_slots.begin() + plane * n + sl->offset + sl->size);
    }
    uint32_t id;
    bool created;
    EXPECT_TRUE(shard->dense()
                    .Register(d.name, d.shape, sl->offset, sl->size, values, &id, &created, d.update)
                    .ok());
    EXPECT_TRUE(shard->dense().Assign(id, values, slots, d.state).ok());
  }
  return shard;
}

std::string Slurp(const fs::path& p) {
  std::string s;
  EXPECT_TRUE(ReadFile(p.string(), &s).ok()) << p;
  return s;
}

// Where two byte strings first differ, for a readable failure.
std::string FirstDifference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
         ", first difference at byte " + std::to_string(i);
}

// Restores `golden` onto n shards and compares everything with the
// golden state; dense variables are put back together from their slices.
void LoadAndCompare(const fs::path& golden, int version, uint32_t n, int64_t slice_bytes) {
  const Router router(n);
  size_t rows_seen = 0;
  std::map<uint64_t, uint32_t> pending;
  std::map<std::string, std::vector<float>> values, slots;
  std::map<std::string, int> slices;
  for (uint32_t i = 0; i < n; ++i) {
    auto shard = NewShard(i, n, slice_bytes);
    uint64_t rows = 0;
    Status s = RestoreShard(&shard, golden.string(), &rows);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(shard->global_step(), 42);
    ASSERT_EQ(shard->tables().size(), 1u);
    EmbeddingTable* t = shard->table(0);
    EXPECT_EQ(t->options().name, "emb");
    EXPECT_EQ(t->dim(), 2);
    EXPECT_EQ(t->options().seed, 5u);
    EXPECT_EQ(t->options().init_stddev, 0.25f);
    const VariableOptState want = kTableState[n == 2 ? i : 0];
    EXPECT_EQ(t->opt_state().started, want.started);
    EXPECT_EQ(t->opt_state().beta1_power, want.beta1_power);
    EXPECT_EQ(t->opt_state().beta2_power, want.beta2_power);
    t->ForEachRow([&](uint64_t key, const float* v, const float* sl, RowMeta meta) {
      const GoldenRow* r = nullptr;
      for (const GoldenRow& g : kRows) {
        if (Mix64(g.n) == key) r = &g;
      }
      ASSERT_NE(r, nullptr) << "unknown key " << key;
      EXPECT_EQ(router.ShardOfKey(key), i);
      for (int j = 0; j < 2; ++j) EXPECT_EQ(v[j], r->values[j]);
      for (int j = 0; j < 4; ++j) EXPECT_EQ(sl[j], r->slots[j]);
      EXPECT_EQ(meta.frequency, r->meta.frequency);
      EXPECT_EQ(meta.last_step, r->meta.last_step);
      ++rows_seen;
    });
    t->ForEachPendingKey([&](uint64_t key, uint32_t count) {
      EXPECT_EQ(router.ShardOfKey(key), i);
      pending[key] = count;
    });
    shard->dense().ForEach([&](uint32_t, const DenseVariable& v) {
      const GoldenDense* d = nullptr;
      for (const GoldenDense& g : kDense) {
        if (v.name == g.name) d = &g;
      }
      ASSERT_NE(d, nullptr) << v.name;
      const std::optional<DenseSlice> sl = SliceOnShard(PartitionDense(router, v.name, v.shape, slice_bytes), i);
      ASSERT_NE(sl, std::nullopt) << v.name << " restored onto a shard that holds none of it";
      EXPECT_EQ(v.offset, sl->offset) << v.name;
      ASSERT_EQ(static_cast<int64_t>(v.values.size()), sl->size) << v.name;
      EXPECT_EQ(v.shape, d->shape);
      const int64_t whole = static_cast<int64_t>(d->values.size()), k = sl->size;
      auto& val = values[v.name];
      auto& slo = slots[v.name];
      val.resize(whole);
      slo.resize(2 * whole);
      std::copy_n(v.values.begin(), k, val.begin() + v.offset);
      std::copy_n(v.slots.begin(), k, slo.begin() + v.offset);
      std::copy_n(v.slots.begin() + k, k, slo.begin() + whole + v.offset);
      ++slices[v.name];
      EXPECT_EQ(v.opt_state.started, d->state.started);
      EXPECT_EQ(v.opt_state.beta1_power, d->state.beta1_power);
      EXPECT_EQ(v.opt_state.beta2_power, d->state.beta2_power);
      EXPECT_TRUE(v.update == d->update) << v.name << " restored as " << v.update.ToString();
    });
  }
  EXPECT_EQ(rows_seen, 5u);
  const std::map<uint64_t, uint32_t> want_pending =
      version >= 4 ? kPending : std::map<uint64_t, uint32_t>();
  EXPECT_EQ(pending, want_pending);
  for (const GoldenDense& d : kDense) {
    if (!InVersion(d, version)) {
      EXPECT_EQ(values.count(d.name), 0u) << d.name;
      continue;
    }
    EXPECT_EQ(values[d.name], d.values) << d.name;
    EXPECT_EQ(slots[d.name], DenseSlots(d)) << d.name;
    EXPECT_EQ(static_cast<size_t>(slices[d.name]),
              PartitionDense(router, d.name, d.shape, slice_bytes).size())
        << d.name;
  }
}

class CheckpointFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ckpt_format_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void WriteAndCompare(int version);
  fs::path dir_;
};

// A checkpoint with no moving average is written as version 4, byte for
// byte (a job without batch norm keeps the files it always had); one with a
// moving average as version 5.
TEST_F(CheckpointFormatTest, TodaysWriterProducesTheGoldenBytes) {
  for (int version : {4, kShardFileVersion}) {
    SCOPED_TRACE("version " + std::to_string(version));
    WriteAndCompare(version);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
}

void CheckpointFormatTest::WriteAndCompare(int version) {
  const fs::path golden_dir = fs::path(DEEPFM_TESTDATA) / ("ckpt-v" + std::to_string(version));
  // The golden rows really are split between the shards as the comment says.
  const Router router(2);
  for (const GoldenRow& r : kRows) EXPECT_EQ(router.ShardOfKey(Mix64(r.n)), r.n <= 2 ? 1u : 0u);
  EXPECT_EQ(router.ShardOfName("linear/bias"), 1u);
  EXPECT_EQ(router.ShardOfName("dnn/out/bias"), 0u);
  EXPECT_EQ(PartitionDense(router, "dnn/kernel", {4, 2}, kGoldenSliceBytes).size(), 2u);

  Manifest m;
  m.global_step = 42;
  m.num_shards = 2;
  m.num_slots = kDefaultNumSlots;
  m.optimizer = "adam";
  m.batch_size = 256;
  m.num_workers = 3;
  m.data_files = "train.csv:1234,more%20data.csv:99";
  m.positions = {{0, {1, 1, 77, 3, 9, 4}}, {2, {0, 0, 0, 0, 0, 0}}};
  uint64_t total_rows = 0;
  for (uint32_t i = 0; i < 2; ++i) {
    auto shard = GoldenShard(i, version);
    CheckpointFile f;
    uint64_t rows = 0;
    ASSERT_TRUE(SaveShard(*shard, dir_.string(), 42, &f, &rows).ok());
    total_rows += rows;
    m.files.push_back(f);
  }
  EXPECT_EQ(total_rows, 5u);
  ASSERT_TRUE(WriteFileAtomic((dir_ / "MANIFEST").string(), m.Serialize()).ok());
  if (version == kShardFileVersion && std::getenv("DEEPFM_UPDATE_GOLDEN") != nullptr) {
    fs::create_directories(golden_dir);
    for (const char* name : {"MANIFEST", "shard-0-of-2.bin", "shard-1-of-2.bin"}) {
      fs::copy_file(dir_ / name, golden_dir / name, fs::copy_options::overwrite_existing);
    }
    GTEST_SKIP() << "wrote the golden checkpoint to " << golden_dir;
  }
  ASSERT_TRUE(fs::exists(golden_dir / "MANIFEST"))
      << golden_dir << " is missing: a new format version needs its golden (see the file comment)";
  for (const char* name : {"MANIFEST", "shard-0-of-2.bin", "shard-1-of-2.bin"}) {
    const std::string now = Slurp(dir_ / name), golden = Slurp(golden_dir / name);
    EXPECT_TRUE(now == golden)
        << name << " differs from the golden file (" << FirstDifference(now, golden)
        << "): the checkpoint format changed. Bump kShardFileVersion and write a new "
           "golden (see this file's comment)";
  }
}

// The golden checkpoints of this version and every older readable one load,
// onto one shard and onto two, with whole or sliced dense variables, with
// every value, slot, row meta and optimizer state as written.
TEST_F(CheckpointFormatTest, TheGoldenCheckpointLoadsExactly) {
  for (int version = 2; version <= kShardFileVersion; ++version) {
    const fs::path golden = fs::path(DEEPFM_TESTDATA) / ("ckpt-v" + std::to_string(version));
    for (uint32_t n : {1u, 2u}) {
      for (int64_t slice_bytes : {kDefaultDenseSliceBytes, kGoldenSliceBytes}) {
        SCOPED_TRACE("version " + std::to_string(version) + ", " + std::to_string(n) +
                     " shards, slices of " + std::to_string(slice_bytes) + " bytes");
        LoadAndCompare(golden, version, n, slice_bytes);
      }
    }
  }
}

TEST_F(CheckpointFormatTest, TheGoldenManifestLoadsExactly) {
  Manifest m;
  ASSERT_TRUE(ReadAndVerifyManifest(kGolden.string(), &m).ok());
  EXPECT_EQ(m.batch_size, 256);
  EXPECT_EQ(m.num_workers, 3);
  EXPECT_EQ(m.data_files, "train.csv:1234,more%20data.csv:99");
  ASSERT_EQ(m.positions.size(), 2u);
  EXPECT_EQ(m.positions[0].task_index, 0u);
  EXPECT_EQ(m.positions[0].position.epoch, 1);
  EXPECT_EQ(m.positions[0].position.file_index, 1u);
  EXPECT_EQ(m.positions[0].position.offset, 77u);
  EXPECT_EQ(m.positions[0].position.line_number, 3);
  EXPECT_EQ(m.positions[0].position.line_index, 9);
  EXPECT_EQ(m.positions[0].position.epoch_rows, 4);
  EXPECT_EQ(m.positions[1].task_index, 2u);
  // Shard 0 hands the positions to the trainers after a restore.
  auto shard = NewShard(0, 1);
  uint64_t rows = 0;
  ASSERT_TRUE(RestoreShard(&shard, kGolden.string(), &rows).ok());
  StatsResponse stats;
  shard->Stats(&stats);
  EXPECT_EQ(stats.restored_global_step(), 42);
  EXPECT_EQ(stats.restored_batch_size(), 256);
  EXPECT_EQ(stats.restored_num_workers(), 3);
  EXPECT_EQ(stats.restored_data_files(), m.data_files);
  ASSERT_EQ(stats.restored_positions_size(), 2);
  EXPECT_EQ(stats.restored_positions(0).position().offset(), 77u);
  EXPECT_EQ(stats.restored_positions(0).position().epoch_rows(), 4);
}

// Version 1 (before snapshots: no "started" flags, no end-of-rows marker)
// is refused by number, not misread.
TEST_F(CheckpointFormatTest, VersionOneIsRefusedByNumber) {
  auto shard = NewShard(0, 1);
  uint64_t rows = 0;
  Status s = RestoreShard(&shard, (fs::path(DEEPFM_TESTDATA) / "ckpt-v1").string(), &rows);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("format version 1; this build reads version " +
                             std::to_string(kShardFileVersion)),
            std::string::npos)
      << s.message();
}

TEST_F(CheckpointFormatTest, AnotherVersionIsRefusedByName) {
  fs::copy(kGolden, dir_ / "ckpt-42", fs::copy_options::recursive);
  const fs::path file = dir_ / "ckpt-42" / "shard-0-of-2.bin";
  std::string bytes = Slurp(file);
  bytes[7] = '9';
  ASSERT_TRUE(WriteFileAtomic(file.string(), bytes).ok());
  // Re-seal the manifest so the checksum passes and the version check speaks.
  Manifest m;
  std::string text = Slurp(dir_ / "ckpt-42" / "MANIFEST");
  ASSERT_TRUE(Manifest::Parse(text, "MANIFEST", &m).ok());
  m.files[0].crc32c = Crc32c(bytes.data(), bytes.size());
  ASSERT_TRUE(WriteFileAtomic((dir_ / "ckpt-42" / "MANIFEST").string(), m.Serialize()).ok());
  auto shard = NewShard(0, 1);
  uint64_t rows = 0;
  Status s = RestoreShard(&shard, (dir_ / "ckpt-42").string(), &rows);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("format version 9; this build reads version " +
                             std::to_string(kShardFileVersion)),
            std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace deepfm::ps

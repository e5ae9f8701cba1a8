#include "common/checkpoint_manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "common/crc32c.h"
#include "tests/support/fault_env.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;
using testing_util::FaultInjectionEnv;

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  const std::string a(1000, 'x');
  EXPECT_EQ(Crc32cExtend(Crc32c(a.data(), 333), a.data() + 333, 667), Crc32c(a.data(), 1000));
  EXPECT_EQ(Crc32cExtendPortable(0, "123456789", 9), 0xe3069283u);
}

// The CPU's crc32 path and the software one agree on every length and
// alignment, and on chained calls.
TEST(Crc32cTest, HardwareAndSoftwareAgree) {
  if (!Crc32cHardware()) GTEST_SKIP() << "this CPU has no SSE4.2 crc32: only the software path runs";
  std::string data(4096 + 64, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (char& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 1000, 4096}) {
      EXPECT_EQ(Crc32c(data.data() + offset, n), Crc32cExtendPortable(0, data.data() + offset, n))
          << "offset " << offset << " length " << n;
    }
  }
  EXPECT_EQ(Crc32cExtend(Crc32c(data.data(), 1001), data.data() + 1001, 2000),
            Crc32cExtendPortable(Crc32cExtendPortable(0, data.data(), 1001), data.data() + 1001, 2000));
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

// A checkpoint root with helpers that stage and commit checkpoints the way
// the shards and the chief do, through any Env.
class CommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("commit_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Root() const { return root_.string(); }
  static std::string Payload(int64_t step, int version) {
    return "rows of step " + std::to_string(step) + " version " + std::to_string(version);
  }
  // ckpt-<step>.tmp holding one fsynced shard file, as a shard leaves it.
  std::string Stage(int64_t step, int version, Manifest* m, Env* env = Env::Default()) {
    const std::string tmp = (root_ / (CheckpointFolderName(step) + ".tmp")).string();
    fs::remove_all(tmp);
    EXPECT_TRUE(env->CreateDir(tmp).ok());
    const std::string payload = Payload(step, version);
    std::unique_ptr<WritableFile> f;
    EXPECT_TRUE(env->NewWritableFile((fs::path(tmp) / ShardFileName(0, 1)).string(), &f).ok());
    EXPECT_TRUE(f->Append(payload).ok());
    EXPECT_TRUE(f->Sync().ok());
    EXPECT_TRUE(f->Close().ok());
    *m = Manifest();
    m->global_step = step;
    m->num_shards = 1;
    m->num_slots = 16;
    m->optimizer = "adam";
    m->files = {{ShardFileName(0, 1), payload.size(), Crc32c(payload.data(), payload.size())}};
    return tmp;
  }
  Status Commit(int64_t step, int version, int keep_max, Env* env = Env::Default()) {
    Manifest m;
    const std::string tmp = Stage(step, version, &m, env);
    return CommitCheckpoint(Root(), tmp, m, keep_max, env);
  }
  std::string Latest() {
    std::string folder;
    Status s = LatestCheckpoint(Root(), &folder);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return fs::path(folder).filename().string();
  }
  // A committed-looking folder the pointer does not list.
  void MakeOrphan(int64_t step) {
    Manifest m;
    const std::string tmp = Stage(step, 0, &m);
    ASSERT_TRUE(WriteFileAtomic((fs::path(tmp) / "MANIFEST").string(), m.Serialize()).ok());
    fs::rename(tmp, root_ / CheckpointFolderName(step));
  }
  void Corrupt(int64_t step) {
    std::fstream f(root_ / CheckpointFolderName(step) / ShardFileName(0, 1),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put('#');
  }
  bool Has(int64_t step) const { return fs::exists(root_ / CheckpointFolderName(step)); }
  std::string PointerText() const {
    std::ifstream in(root_ / "checkpoint");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path root_;
};

TEST_F(CommitTest, PointerListsEveryKeptCheckpointInCommitOrder) {
  ASSERT_TRUE(Commit(30, 0, 0).ok());
  ASSERT_TRUE(Commit(10, 0, 0).ok());
  ASSERT_TRUE(Commit(20, 0, 0).ok());
  EXPECT_EQ(PointerText(), "latest ckpt-20\nall ckpt-30\nall ckpt-10\nall ckpt-20\n");
  CheckpointState st;
  ASSERT_TRUE(ReadCheckpointState(Root(), &st).ok());
  EXPECT_EQ(st.latest, "ckpt-20");
  EXPECT_EQ(st.all, (std::vector<std::string>{"ckpt-30", "ckpt-10", "ckpt-20"}));
}

TEST_F(CommitTest, RetentionDeletesTheOldestCommitsNotTheLowestSteps) {
  ASSERT_TRUE(Commit(30, 0, 2).ok());
  ASSERT_TRUE(Commit(10, 0, 2).ok());
  ASSERT_TRUE(Commit(20, 0, 2).ok());
  EXPECT_FALSE(Has(30));
  EXPECT_TRUE(Has(10));
  EXPECT_TRUE(Has(20));
  EXPECT_EQ(Latest(), "ckpt-20");
}

// A delta is useless without the saves it builds on: retention keeps the
// chain back to the full save of every kept delta, and lets it go once a
// newer full save stands on its own.
TEST_F(CommitTest, RetentionKeepsTheChainAKeptDeltaBuildsOn) {
  ASSERT_TRUE(Commit(10, 0, 1).ok());  // full
  for (int64_t step : {20, 30}) {
    Manifest m;
    const std::string tmp = Stage(step, 0, &m);
    m.base = CheckpointFolderName(step - 10);
    m.base_step = step - 10;
    ASSERT_TRUE(CommitCheckpoint(Root(), tmp, m, 1).ok());
  }
  EXPECT_TRUE(Has(10)) << "the full save under two kept deltas was deleted";
  EXPECT_TRUE(Has(20)) << "the delta ckpt-30 builds on was deleted";
  EXPECT_TRUE(Has(30));
  Manifest back;
  ASSERT_TRUE(ReadAndVerifyManifest((root_ / "ckpt-30").string(), &back).ok());
  EXPECT_EQ(back.base, "ckpt-20");
  EXPECT_EQ(back.base_step, 20);
  ASSERT_TRUE(Commit(40, 0, 1).ok());  // a new full save: the old chain may go
  EXPECT_FALSE(Has(10));
  EXPECT_FALSE(Has(20));
  EXPECT_FALSE(Has(30));
  EXPECT_TRUE(Has(40));
}

TEST(ManifestTest, ABaseMustNameItsStep) {
  Manifest m;
  m.global_step = 30;
  m.num_shards = 1;
  m.num_slots = 16;
  m.optimizer = "adam";
  m.files = {{"shard-0-of-1.bin", 1, 2}};
  m.base = "ckpt-20";
  m.base_step = 20;
  Manifest back;
  ASSERT_TRUE(Manifest::Parse(m.Serialize(), "MANIFEST", &back).ok());
  EXPECT_TRUE(back.is_delta());
  m.base_step = 21;  // disagrees with the folder's name
  EXPECT_EQ(Manifest::Parse(m.Serialize(), "MANIFEST", &back).code(), Code::kDataLoss);
}

// An orphan with a higher step (a crash between rename and pointer) must not
// push out the checkpoint just written, nor be deleted.
TEST_F(CommitTest, AnOrphanHigherStepFolderNeverPushesTheNewOneOut) {
  ASSERT_TRUE(Commit(10, 0, 1).ok());
  MakeOrphan(99);
  ASSERT_TRUE(Commit(20, 0, 1).ok());
  EXPECT_EQ(Latest(), "ckpt-20");
  Manifest m;
  EXPECT_TRUE(ReadAndVerifyManifest((root_ / "ckpt-20").string(), &m).ok());
  EXPECT_FALSE(Has(10));
  EXPECT_TRUE(Has(99));
  EXPECT_EQ(PointerText(), "latest ckpt-20\nall ckpt-20\n");
}

// A pointer rolled back by hand (old one-line format) to ckpt-10 while
// ckpt-20 and ckpt-30 exist: saves after the resume keep their own history.
TEST_F(CommitTest, ARolledBackPointerKeepsTheNewSaves) {
  for (int step : {10, 20, 30}) ASSERT_TRUE(Commit(step, 0, 0).ok());
  ASSERT_TRUE(WriteFileAtomic((root_ / "checkpoint").string(), "latest ckpt-10\n").ok());
  ASSERT_TRUE(Commit(15, 0, 2).ok());
  EXPECT_EQ(Latest(), "ckpt-15");
  EXPECT_TRUE(Has(10));
  ASSERT_TRUE(Commit(16, 0, 2).ok());
  EXPECT_EQ(Latest(), "ckpt-16");
  EXPECT_TRUE(Has(15));
  EXPECT_TRUE(Has(16));
  EXPECT_FALSE(Has(10));
  EXPECT_TRUE(Has(20));  // orphans of the abandoned run stay
  EXPECT_TRUE(Has(30));
}

TEST_F(CommitTest, OldOneLinePointerParses) {
  ASSERT_TRUE(Commit(10, 0, 0).ok());
  ASSERT_TRUE(WriteFileAtomic((root_ / "checkpoint").string(), "latest ckpt-10\n").ok());
  CheckpointState st;
  ASSERT_TRUE(ReadCheckpointState(Root(), &st).ok());
  EXPECT_EQ(st.latest, "ckpt-10");
  EXPECT_EQ(st.all, std::vector<std::string>{"ckpt-10"});
  EXPECT_EQ(Latest(), "ckpt-10");
  for (const char* bad : {"", "latest\n", "latest ../x\n", "all ckpt-1\nlatest ckpt-1\n",
                          "latest ckpt-1\nsome ckpt-2\n", "latest ckpt-1 ckpt-2\n"}) {
    EXPECT_EQ(CheckpointState::Parse(bad, "P", &st).code(), Code::kDataLoss) << bad;
  }
}

TEST_F(CommitTest, ReSavingAStepSwapsItInWithoutAMomentWithoutIt) {
  ASSERT_TRUE(Commit(10, 1, 0).ok());
  FaultInjectionEnv fenv(Env::Default());
  ASSERT_TRUE(Commit(10, 2, 0, &fenv).ok());
  EXPECT_EQ(Latest(), "ckpt-10");
  EXPECT_EQ(PointerText(), "latest ckpt-10\nall ckpt-10\n");
  std::ifstream in(root_ / "ckpt-10" / ShardFileName(0, 1));
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, Payload(10, 2));
  EXPECT_FALSE(fs::exists(root_ / "ckpt-10.tmp"));
  // Swapped in, never removed first.
  const std::string final_path = (root_ / "ckpt-10").string();
  bool swapped = false;
  for (const std::string& op : fenv.log()) {
    EXPECT_NE(op, "remove " + final_path);
    swapped |= op.rfind("swap ", 0) == 0;
  }
  EXPECT_TRUE(swapped);
}

TEST_F(CommitTest, ReSavingFallsBackToTwoRenamesWhenTheFilesystemCannotSwap) {
  ASSERT_TRUE(Commit(10, 1, 0).ok());
  FaultInjectionEnv fenv(Env::Default());
  fenv.FailNth(FaultInjectionEnv::Op::kExchange, 1, FaultInjectionEnv::Fault::kUnsupported);
  ASSERT_TRUE(Commit(10, 2, 0, &fenv).ok());
  EXPECT_TRUE(fenv.injected());
  std::ifstream in(root_ / "ckpt-10" / ShardFileName(0, 1));
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, Payload(10, 2));
  EXPECT_EQ(std::distance(fs::directory_iterator(root_), fs::directory_iterator()), 2);
}

TEST_F(CommitTest, CommitRemovesLeftoverTmpFoldersOfCrashedSaves) {
  ASSERT_TRUE(Commit(10, 0, 0).ok());
  Manifest m;
  Stage(15, 0, &m);  // a save that crashed before its commit
  fs::create_directories(root_ / "ckpt-12.replaced.tmp");
  fs::create_directories(root_ / "logs");
  ASSERT_TRUE(Commit(20, 0, 0).ok());
  EXPECT_FALSE(fs::exists(root_ / "ckpt-15.tmp"));
  EXPECT_FALSE(fs::exists(root_ / "ckpt-12.replaced.tmp"));
  EXPECT_TRUE(fs::exists(root_ / "logs"));
  EXPECT_TRUE(Has(10));
  EXPECT_TRUE(Has(20));
}

// The order of the steps is what makes a commit durable (DESIGN §9).
TEST_F(CommitTest, CommitOrdersItsStepsForDurability) {
  ASSERT_TRUE(Commit(10, 0, 1).ok());
  Manifest m;
  const std::string tmp = Stage(20, 0, &m);
  FaultInjectionEnv fenv(Env::Default());
  ASSERT_TRUE(CommitCheckpoint(Root(), tmp, m, 1, &fenv).ok());
  const std::string root = Root(), fin = (root_ / "ckpt-20").string();
  const std::string manifest = tmp + "/MANIFEST", pointer = root + "/checkpoint";
  const std::vector<std::string> expected = {
      "create " + manifest,
      "fsync " + manifest,
      "close " + manifest,
      "fsync-dir " + tmp,
      "rename " + tmp + " -> " + fin,
      "fsync-dir " + root,
      "create " + pointer + ".tmp",
      "fsync " + pointer + ".tmp",
      "close " + pointer + ".tmp",
      "rename " + pointer + ".tmp -> " + pointer,
      "fsync-dir " + root,
      "remove " + (root_ / "ckpt-10").string(),
  };
  // `expected` must appear in this order (reads and appends may interleave).
  size_t next = 0;
  for (const std::string& op : fenv.log()) {
    if (next < expected.size() && op == expected[next]) ++next;
  }
  std::string log;
  for (const std::string& op : fenv.log()) log += op + "\n";
  EXPECT_EQ(next, expected.size()) << "missing or out of order: " << expected[next] << "\nlog:\n"
                                   << log;
}

// A delta whose own files verify is still no good when a save it builds on
// is damaged: the newest good checkpoint is the newest whole chain.
TEST_F(CommitTest, ADeltaOnADamagedBaseIsNotGood) {
  ASSERT_TRUE(Commit(10, 0, 0).ok());
  ASSERT_TRUE(Commit(20, 0, 0).ok());  // full
  Manifest m;
  const std::string tmp = Stage(30, 0, &m);
  m.base = "ckpt-20";
  m.base_step = 20;
  ASSERT_TRUE(CommitCheckpoint(Root(), tmp, m, 0).ok());
  std::string good;
  ASSERT_TRUE(FindNewestGoodCheckpoint(Root(), &good).ok());
  EXPECT_EQ(fs::path(good).filename(), "ckpt-30");
  Corrupt(20);
  ASSERT_TRUE(FindNewestGoodCheckpoint(Root(), &good).ok());
  EXPECT_EQ(fs::path(good).filename(), "ckpt-10");
}

TEST_F(CommitTest, FindsTheNewestCheckpointThatVerifies) {
  for (int step : {10, 20, 30}) ASSERT_TRUE(Commit(step, 0, 0).ok());
  MakeOrphan(25);
  std::string good;
  ASSERT_TRUE(FindNewestGoodCheckpoint(Root(), &good).ok());
  EXPECT_EQ(fs::path(good).filename(), "ckpt-30");
  Corrupt(30);
  ASSERT_TRUE(FindNewestGoodCheckpoint(Root(), &good).ok());
  EXPECT_EQ(fs::path(good).filename(), "ckpt-20");  // the list before orphans
  Corrupt(20);
  fs::remove(root_ / "ckpt-10" / "MANIFEST");
  ASSERT_TRUE(FindNewestGoodCheckpoint(Root(), &good).ok());
  EXPECT_EQ(fs::path(good).filename(), "ckpt-25");
  Corrupt(25);
  Status s = FindNewestGoodCheckpoint(Root(), &good);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find("ckpt-25"), std::string::npos) << s.message();
}

TEST_F(CommitTest, ACorruptLatestIsRefusedNamingTheNewestGoodOneAndTheFlag) {
  for (int step : {10, 20, 30}) ASSERT_TRUE(Commit(step, 0, 0).ok());
  Corrupt(30);
  const std::string latest = (root_ / "ckpt-30").string();
  Manifest m;
  const Status why = ReadAndVerifyManifest(latest, &m);
  ASSERT_EQ(why.code(), Code::kDataLoss);
  Status s = CorruptLatestCheckpointError(Root(), latest, why);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find(why.message()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("Refusing to resume from " + latest), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find((root_ / "ckpt-20").string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--restore_checkpoint=ckpt-20"), std::string::npos) << s.message();
  Corrupt(20);
  Corrupt(10);
  s = CorruptLatestCheckpointError(Root(), latest, why);
  EXPECT_EQ(s.message().find("--restore_checkpoint="), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("No other checkpoint"), std::string::npos) << s.message();
}

// After a commit fails or the process dies at any of its operations (and
// then the power goes), the pointer names a checkpoint that verifies: the
// previous one or the new one, never a broken one.
enum class Failure { kError, kShortWriteOrNoSpace, kCrash };
struct Scenario {
  const char* name;
  int64_t new_step;  // 10 re-saves the committed step
  int keep_max;
};

void PrintTo(Failure f, std::ostream* os) { *os << static_cast<int>(f); }
void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

class CommitFaultTest : public CommitTest,
                        public ::testing::WithParamInterface<std::tuple<Failure, Scenario>> {
 protected:
  // What the pointer names verifies and holds step 10 (version 1) or the new
  // step (version 2).
  void ExpectRestorable(int64_t new_step, const std::string& when) {
    std::string folder;
    Status s = LatestCheckpoint(Root(), &folder);
    ASSERT_TRUE(s.ok()) << when << ": " << s.ToString();
    Manifest m;
    s = ReadAndVerifyManifest(folder, &m);
    ASSERT_TRUE(s.ok()) << when << ": " << s.ToString();
    const std::string name = fs::path(folder).filename().string();
    ASSERT_TRUE(name == "ckpt-10" || name == CheckpointFolderName(new_step)) << when << ": " << name;
    std::ifstream in(fs::path(folder) / ShardFileName(0, 1));
    std::string text;
    std::getline(in, text);
    EXPECT_TRUE(text == Payload(10, 1) || text == Payload(new_step, 2)) << when << ": " << text;
    EXPECT_EQ(m.global_step, name == "ckpt-10" && text == Payload(10, 1) ? 10 : new_step) << when;
  }
};

std::string FaultTestName(const ::testing::TestParamInfo<std::tuple<Failure, Scenario>>& info) {
  static const char* const kFailures[] = {"Error", "ShortWriteOrNoSpace", "Crash"};
  return std::string(kFailures[static_cast<int>(std::get<0>(info.param))]) +
         std::get<1>(info.param).name;
}

TEST_P(CommitFaultTest, ThePreviousCheckpointSurvivesAFailureAtEveryStep) {
  const auto [failure, sc] = GetParam();
  bool committed = false;
  for (int n = 1; n < 200 && !committed; ++n) {
    fs::remove_all(root_);
    fs::create_directories(root_);
    FaultInjectionEnv fenv(Env::Default());
    ASSERT_TRUE(Commit(10, 1, sc.keep_max, &fenv).ok());
    MakeOrphan(99);
    Manifest m;
    const std::string tmp = Stage(sc.new_step, 2, &m, &fenv);
    switch (failure) {
      case Failure::kError:
        fenv.FailOperation(n);
        break;
      case Failure::kShortWriteOrNoSpace:
        fenv.FailOperation(n, n % 2 ? FaultInjectionEnv::Fault::kShortWrite
                                    : FaultInjectionEnv::Fault::kNoSpace);
        break;
      case Failure::kCrash:
        fenv.CrashAfter(n - 1);
        break;
    }
    const int first = fenv.operations();
    const Status s = CommitCheckpoint(Root(), tmp, m, sc.keep_max, &fenv);
    const std::string when =
        "operation " + std::to_string(n) + " of the commit (" +
        (fenv.operations() >= first + n ? fenv.log()[first + n - 1] : std::string("none")) + ")";
    if (!fenv.injected()) {
      ASSERT_TRUE(s.ok()) << when << ": " << s.ToString();
      EXPECT_EQ(Latest(), CheckpointFolderName(sc.new_step));
      committed = true;
    }
    ExpectRestorable(sc.new_step, when);
    fenv.DropUnsyncedData();
    ExpectRestorable(sc.new_step, when + ", then a power cut");
    if (s.ok() && !fenv.crashed()) {
      EXPECT_EQ(Latest(), CheckpointFolderName(sc.new_step)) << when;
    }
    // A later save after the failure succeeds and takes over.
    Manifest again;
    const std::string tmp2 = Stage(sc.new_step, 2, &again);
    ASSERT_TRUE(CommitCheckpoint(Root(), tmp2, again, sc.keep_max).ok()) << when;
    ExpectRestorable(sc.new_step, when + ", then a retry");
    EXPECT_EQ(Latest(), CheckpointFolderName(sc.new_step)) << when;
    EXPECT_TRUE(Has(99)) << when;
  }
  EXPECT_TRUE(committed) << "the commit never got past its injected failures";
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, CommitFaultTest,
    ::testing::Combine(::testing::Values(Failure::kError, Failure::kShortWriteOrNoSpace,
                                         Failure::kCrash),
                       ::testing::Values(Scenario{"NewStepKeepOne", 20, 1},
                                         Scenario{"NewStepKeepAll", 20, 0},
                                         Scenario{"ReSave", 10, 2})),
    FaultTestName);

}  // namespace
}  // namespace deepfm

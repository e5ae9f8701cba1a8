#include "common/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/fault_env.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;
using testing_util::FaultInjectionEnv;
using Op = FaultInjectionEnv::Op;
using Fault = FaultInjectionEnv::Fault;

int OpenDescriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("env_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }

  Env* env_ = Env::Default();
  fs::path dir_;
};

TEST_F(EnvTest, StreamsManySmallAppendsAndLargeOnes) {
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(env_->NewWritableFile(P("a"), &f).ok());
  std::string expect;
  for (int i = 0; i < 100000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    ASSERT_TRUE(f->Append(piece).ok());
    expect += piece;
  }
  const std::string big(3 << 20, 'z');  // larger than the buffer: written through
  ASSERT_TRUE(f->Append(big).ok());
  expect += big;
  ASSERT_TRUE(f->Append("tail").ok());
  expect += "tail";
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(Slurp(P("a")), expect);
  uint64_t size = 0;
  ASSERT_TRUE(env_->FileSize(P("a"), &size).ok());
  EXPECT_EQ(size, expect.size());
  std::string back;
  ASSERT_TRUE(env_->ReadFile(P("a"), &back).ok());
  EXPECT_EQ(back, expect);
  // A closed file refuses more.
  EXPECT_FALSE(f->Append("x").ok());
  EXPECT_FALSE(f->Close().ok());
}

TEST_F(EnvTest, SequentialReaderReturnsChunksThenAShortOneAtTheEnd) {
  const std::string text = "0123456789abcdefghij";  // 20 bytes
  std::ofstream(P("s"), std::ios::binary) << text;
  std::unique_ptr<SequentialFile> f;
  ASSERT_TRUE(env_->NewSequentialFile(P("s"), &f).ok());
  char scratch[8];
  std::string_view piece;
  std::string got;
  ASSERT_TRUE(f->Read(8, &piece, scratch).ok());
  EXPECT_EQ(piece, "01234567");
  got += piece;
  ASSERT_TRUE(f->Read(8, &piece, scratch).ok());
  got += piece;
  ASSERT_TRUE(f->Read(8, &piece, scratch).ok());
  EXPECT_EQ(piece.size(), 4u);
  got += piece;
  ASSERT_TRUE(f->Read(8, &piece, scratch).ok());
  EXPECT_TRUE(piece.empty());
  EXPECT_EQ(got, text);
}

TEST_F(EnvTest, ErrorsNameThePathAndTheReason) {
  std::unique_ptr<WritableFile> w;
  Status s = env_->NewWritableFile(P("no/such/dir/f"), &w);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find(P("no/such/dir/f")), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("No such file or directory"), std::string::npos) << s.message();
  std::unique_ptr<SequentialFile> r;
  s = env_->NewSequentialFile(P("missing"), &r);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_NE(s.message().find(P("missing")), std::string::npos) << s.message();
  std::string text;
  EXPECT_EQ(env_->ReadFile(P("missing"), &text).code(), Code::kNotFound);
  uint64_t size;
  EXPECT_EQ(env_->FileSize(P("missing"), &size).code(), Code::kNotFound);
  s = env_->RenameFile(P("missing"), P("other"));
  EXPECT_NE(s.message().find(P("missing")), std::string::npos) << s.message();
  s = env_->SyncDir(P("missing"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(P("missing")), std::string::npos) << s.message();
  std::vector<std::string> names;
  EXPECT_EQ(env_->ListDir(P("missing"), &names).code(), Code::kNotFound);
}

// /dev/full takes the open and fails every write with ENOSPC: the error
// reaches the caller, sticks, and the descriptor is released all the same.
TEST_F(EnvTest, AFailedSyncOrCloseReportsAndReleasesTheDescriptor) {
  const int before = OpenDescriptors();
  {
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(env_->NewWritableFile("/dev/full", &f).ok());
    EXPECT_EQ(OpenDescriptors(), before + 1);
    ASSERT_TRUE(f->Append("buffered, not yet written").ok());
    Status s = f->Sync();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("/dev/full"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
    // The lost bytes are not forgotten by the next call.
    EXPECT_FALSE(f->Sync().ok());
    EXPECT_FALSE(f->Append("more").ok());
    EXPECT_FALSE(f->Close().ok());
    EXPECT_EQ(OpenDescriptors(), before);
  }
  {
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(env_->NewWritableFile("/dev/full", &f).ok());
    ASSERT_TRUE(f->Append("x").ok());
    EXPECT_FALSE(f->Close().ok());  // the flush inside Close fails
    EXPECT_EQ(OpenDescriptors(), before);
  }
  {
    // A write that fails with nothing left in the buffer: Close still says so.
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(env_->NewWritableFile("/dev/full", &f).ok());
    EXPECT_FALSE(f->Append(std::string(1 << 20, 'x')).ok());
    EXPECT_FALSE(f->Close().ok());
    EXPECT_EQ(OpenDescriptors(), before);
  }
  {
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(env_->NewWritableFile(P("dropped"), &f).ok());
  }  // never closed: the destructor closes it
  EXPECT_EQ(OpenDescriptors(), before);
}

TEST_F(EnvTest, CreateDirIsExclusiveAndCreateDirsIsNot) {
  ASSERT_TRUE(env_->CreateDir(P("d")).ok());
  Status s = env_->CreateDir(P("d"));
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_NE(s.message().find(P("d")), std::string::npos) << s.message();
  ASSERT_TRUE(env_->CreateDirs(P("d/e/f")).ok());
  ASSERT_TRUE(env_->CreateDirs(P("d/e/f")).ok());
  EXPECT_TRUE(fs::is_directory(P("d/e/f")));
  std::ofstream(P("file")) << "x";
  EXPECT_FALSE(env_->CreateDirs(P("file")).ok());
}

TEST_F(EnvTest, ListRemoveRenameAndSyncDir) {
  ASSERT_TRUE(env_->CreateDirs(P("t/sub")).ok());
  std::ofstream(P("t/a")) << "a";
  std::ofstream(P("t/sub/b")) << "b";
  std::vector<std::string> names;
  ASSERT_TRUE(env_->ListDir(P("t"), &names).ok());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "sub"}));
  ASSERT_TRUE(env_->SyncDir(P("t")).ok());
  ASSERT_TRUE(env_->RenameFile(P("t/a"), P("t/c")).ok());
  EXPECT_FALSE(env_->FileExists(P("t/a")));
  EXPECT_TRUE(env_->FileExists(P("t/c")));
  ASSERT_TRUE(env_->RemoveFile(P("t/c")).ok());
  EXPECT_EQ(env_->RemoveFile(P("t/c")).code(), Code::kNotFound);
  ASSERT_TRUE(env_->RemoveAll(P("t")).ok());
  EXPECT_FALSE(env_->FileExists(P("t")));
  EXPECT_TRUE(env_->RemoveAll(P("t")).ok());  // already gone
}

TEST_F(EnvTest, RenameExchangeSwapsTwoFoldersInOneStep) {
  ASSERT_TRUE(env_->CreateDirs(P("x")).ok());
  ASSERT_TRUE(env_->CreateDirs(P("y")).ok());
  std::ofstream(P("x/f")) << "from x";
  std::ofstream(P("y/f")) << "from y";
  Status s = env_->RenameExchange(P("x"), P("y"));
  if (s.code() == Code::kUnimplemented) GTEST_SKIP() << s.message();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Slurp(P("x/f")), "from y");
  EXPECT_EQ(Slurp(P("y/f")), "from x");
  // Both must exist: it is a swap, not a move.
  s = env_->RenameExchange(P("x"), P("missing"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.code(), Code::kUnimplemented);
  EXPECT_NE(s.message().find(P("missing")), std::string::npos) << s.message();
  EXPECT_EQ(Slurp(P("x/f")), "from y");
}

TEST(ParentDirTest, IsTheFolderPart) {
  EXPECT_EQ(ParentDir("/a/b/c"), "/a/b");
  EXPECT_EQ(ParentDir("/a/b/c/"), "/a/b");
  EXPECT_EQ(ParentDir("c"), ".");
}

// The fault injector itself: the checkpoint tests trust it to model a failed
// operation and a power cut.
TEST_F(EnvTest, FaultEnvFailsTheNthOperationOfAKind) {
  FaultInjectionEnv fenv(env_);
  fenv.FailNth(Op::kAppend, 2, Fault::kShortWrite);
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(fenv.NewWritableFile(P("f"), &f).ok());
  ASSERT_TRUE(f->Append("1234").ok());
  Status s = f->Append("abcdefgh");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(P("f")), std::string::npos) << s.message();
  EXPECT_TRUE(fenv.injected());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(Slurp(P("f")), "1234abcd");  // half of the failed append landed

  fenv.FailNth(Op::kAppend, 1, Fault::kNoSpace);
  ASSERT_TRUE(fenv.NewWritableFile(P("g"), &f).ok());
  s = f->Append("abc");
  EXPECT_NE(s.message().find("No space left on device"), std::string::npos) << s.message();
  f->Close();
  EXPECT_EQ(Slurp(P("g")), "");

  fenv.FailNth(Op::kExchange, 1, Fault::kUnsupported);
  EXPECT_EQ(fenv.RenameExchange(P("f"), P("g")).code(), Code::kUnimplemented);
  EXPECT_EQ(Slurp(P("f")), "1234abcd");

  fenv.FailOperation(2);  // the rename, after the create
  ASSERT_TRUE(fenv.CreateDir(P("d")).ok());
  EXPECT_FALSE(fenv.RenameFile(P("d"), P("e")).ok());
  EXPECT_TRUE(fs::exists(P("d")));
}

TEST_F(EnvTest, FaultEnvCrashStopsEveryLaterOperation) {
  FaultInjectionEnv fenv(env_);
  fenv.CrashAfter(2);
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(fenv.NewWritableFile(P("f"), &f).ok());
  ASSERT_TRUE(f->Append("abc").ok());
  EXPECT_FALSE(fenv.crashed());
  EXPECT_FALSE(f->Sync().ok());
  EXPECT_TRUE(fenv.crashed());
  EXPECT_FALSE(fenv.CreateDir(P("d")).ok());
  EXPECT_FALSE(fs::exists(P("d")));
  EXPECT_FALSE(fenv.RenameFile(P("f"), P("g")).ok());
  EXPECT_TRUE(fs::exists(P("f")));
  EXPECT_NE(fenv.log().back().find("rename"), std::string::npos);
}

TEST_F(EnvTest, FaultEnvPowerCutKeepsOnlyWhatWasSynced) {
  FaultInjectionEnv fenv(env_);
  // A file synced and its folder synced: survives whole.
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(fenv.NewWritableFile(P("kept"), &f).ok());
  ASSERT_TRUE(f->Append("synced").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append(" lost").ok());
  ASSERT_TRUE(f->Close().ok());
  ASSERT_TRUE(fenv.SyncDir(dir_.string()).ok());
  // A rename over a file, folder not synced: undone, the old file is back.
  ASSERT_TRUE(fenv.CreateDir(P("sub")).ok());
  ASSERT_TRUE(fenv.SyncDir(dir_.string()).ok());
  ASSERT_TRUE(fenv.NewWritableFile(P("sub/p.tmp"), &f).ok());
  ASSERT_TRUE(f->Append("new pointer").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  ASSERT_TRUE(fenv.SyncDir(P("sub")).ok());
  std::ofstream(P("sub/p")) << "old pointer";
  ASSERT_TRUE(fenv.RenameFile(P("sub/p.tmp"), P("sub/p")).ok());
  // A folder renamed, then its parent synced: durable, with its files.
  ASSERT_TRUE(fenv.CreateDir(P("t.tmp")).ok());
  ASSERT_TRUE(fenv.NewWritableFile(P("t.tmp/data"), &f).ok());
  ASSERT_TRUE(f->Append("rows").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  ASSERT_TRUE(fenv.SyncDir(P("t.tmp")).ok());
  ASSERT_TRUE(fenv.RenameFile(P("t.tmp"), P("t")).ok());
  ASSERT_TRUE(fenv.SyncDir(dir_.string()).ok());
  // A folder whose files' entries were never synced loses them.
  ASSERT_TRUE(fenv.CreateDir(P("u")).ok());
  ASSERT_TRUE(fenv.SyncDir(dir_.string()).ok());
  ASSERT_TRUE(fenv.NewWritableFile(P("u/data"), &f).ok());
  ASSERT_TRUE(f->Append("rows").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  // A file synced but whose folder was not synced since its creation: gone.
  ASSERT_TRUE(fenv.NewWritableFile(P("new"), &f).ok());
  ASSERT_TRUE(f->Append("x").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());

  fenv.DropUnsyncedData();
  EXPECT_EQ(Slurp(P("kept")), "synced");
  EXPECT_FALSE(fs::exists(P("new")));
  EXPECT_EQ(Slurp(P("sub/p")), "old pointer");
  EXPECT_EQ(Slurp(P("sub/p.tmp")), "new pointer");
  EXPECT_EQ(Slurp(P("t/data")), "rows");
  EXPECT_FALSE(fs::exists(P("t.tmp")));
  EXPECT_TRUE(fs::exists(P("u")));
  EXPECT_FALSE(fs::exists(P("u/data")));
}

TEST_F(EnvTest, FaultEnvPowerCutUndoesAnUnsyncedSwap) {
  FaultInjectionEnv fenv(env_);
  ASSERT_TRUE(env_->CreateDirs(P("a")).ok());
  ASSERT_TRUE(env_->CreateDirs(P("b")).ok());
  std::ofstream(P("a/f")) << "A";
  std::ofstream(P("b/f")) << "B";
  Status s = fenv.RenameExchange(P("a"), P("b"));
  if (s.code() == Code::kUnimplemented) GTEST_SKIP() << s.message();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Slurp(P("a/f")), "B");
  fenv.DropUnsyncedData();
  EXPECT_EQ(Slurp(P("a/f")), "A");
  ASSERT_TRUE(fenv.RenameExchange(P("a"), P("b")).ok());
  ASSERT_TRUE(fenv.SyncDir(dir_.string()).ok());
  fenv.DropUnsyncedData();
  EXPECT_EQ(Slurp(P("a/f")), "B");
}

}  // namespace
}  // namespace deepfm

// A stand-alone job's bar passes every line through pipes; a process that
// dies with the bar up must still get its last words to the terminal: a
// partial line on stderr, glog's FATAL message, buffered stdout. Each case
// runs this binary again under a pseudo-terminal (the bar is drawn only on
// one) and reads everything the terminal received.
#include "launcher/standalone_progress.h"

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "ps/shard.h"
#include "tests/support/process.h"

namespace deepfm::launcher {
namespace {

constexpr char kMode[] = "DEEPFM_PROGRESS_TEST_DEATH";

// The child's part: a bar up, last words written, then the death the
// parent named. Skipped when run on its own.
TEST(StandaloneProgressChild, Dies) {
  const char* mode = std::getenv(kMode);
  if (mode == nullptr) GTEST_SKIP() << "run by StandaloneProgressTest under a terminal";
  Status s;
  auto shard = ps::Shard::Create(ps::ShardOptions{}, &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  StandaloneProgress bar(shard.get(), 1000, 64);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the bar is drawn
  printf("buffered stdout words");
  fprintf(stderr, "last words without a newline");
  const std::string m = mode;
  if (m == "fatal") LOG(FATAL) << "the check failed: boom";
  if (m == "segv") raise(SIGSEGV);
  if (m == "exit") std::thread([] { std::exit(3); }).join();
  FAIL() << "unknown mode " << m;
}

struct Death {
  std::string out;  // all the terminal received
  int status = 0;
};

Death RunUnderATerminal(const std::string& mode) {
  Death d;
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) ADD_FAILURE() << "forkpty failed";
  if (pid <= 0) {
    if (pid == 0) {
      setenv(kMode, mode.c_str(), 1);
      execl("/proc/self/exe", "standalone_progress_child",
            "--gtest_filter=StandaloneProgressChild.Dies", nullptr);
      _exit(127);
    }
    return d;
  }
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(master, buf, sizeof(buf))) > 0)
      d.out.append(buf, n);  // EIO once the child is gone
  });
  const bool exited = testing_util::WaitExit(pid, 30, &d.status);
  reader.join();
  close(master);
  EXPECT_TRUE(exited) << d.out;
  return d;
}

TEST(StandaloneProgressTest, AFatalLogMessageReachesTheTerminal) {
  const Death d = RunUnderATerminal("fatal");
  EXPECT_TRUE(WIFSIGNALED(d.status) && WTERMSIG(d.status) == SIGABRT) << d.out;
  EXPECT_NE(d.out.find("\r\033[K["), std::string::npos) << "no bar was drawn:\n" << d.out;
  EXPECT_NE(d.out.find("last words without a newline"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("the check failed: boom"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("buffered stdout words"), std::string::npos) << d.out;
  // The bar is not left drawn under the last words.
  const size_t last_draw = d.out.rfind("\r\033[K[");
  EXPECT_NE(d.out.find("\r\033[K", last_draw + 1), std::string::npos) << d.out;
}

TEST(StandaloneProgressTest, AFatalSignalsLastWordsReachTheTerminal) {
  const Death d = RunUnderATerminal("segv");
  EXPECT_TRUE(WIFSIGNALED(d.status) && WTERMSIG(d.status) == SIGSEGV) << d.out;
  EXPECT_NE(d.out.find("last words without a newline"), std::string::npos) << d.out;
}

TEST(StandaloneProgressTest, AnExitFromAnyThreadKeepsTheLastWords) {
  const Death d = RunUnderATerminal("exit");
  EXPECT_TRUE(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 3) << d.out;
  EXPECT_NE(d.out.find("last words without a newline"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("buffered stdout words"), std::string::npos) << d.out;
}

}  // namespace
}  // namespace deepfm::launcher

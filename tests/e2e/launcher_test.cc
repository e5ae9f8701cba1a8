// End-to-end: the real `deepfm` binary runs local jobs (it starts ps_server
// and worker processes) on small generated data.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/checkpoint_manifest.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string output;
};

// Waits up to `seconds` for pid to exit. On timeout it asks the process to
// stop (SIGINT: the launcher then stops its children), then kills it, and
// returns false: no test waits on a process without a deadline.
bool WaitExit(pid_t pid, double seconds, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGINT);
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid, status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return false;
}

// Runs `deepfm <args>` with stdout and stderr captured, for at most
// timeout_s; a run past it fails the test with what it printed.
Result Deepfm(const std::string& args, double timeout_s = 180) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, "pipe failed"};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    const std::string cmd = "exec " + std::string(DEEPFM_BIN) + " " + args;
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  // Read on a thread so the deadline holds even if output stalls.
  std::string output;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) output.append(buf, n);
  });
  int st = 0;
  const bool exited = WaitExit(pid, timeout_s, &st);
  reader.join();  // the write end closes when the process (and its children) are gone
  close(fds[0]);
  EXPECT_TRUE(exited) << "deepfm " << args << " ran past " << timeout_s << " s; it printed:\n" << output;
  return {exited && WIFEXITED(st) ? WEXITSTATUS(st) : -1, output};
}

double Metric(const fs::path& job, const std::string& key) {
  std::string text;
  deepfm::ReadFile((job / "metrics.json").string(), &text);
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\": (-?[0-9.eE+-]+)"))) return -1;
  return std::stod(m[1].str());
}

class LauncherTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("deepfm_e2e_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    const Result r = Deepfm("gen-data --rows=30000 --eval_rows=10000 --seed=5 --out=" + (*root_ / "data").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("oracle eval AUC ([0-9.]+)")));
    oracle_ = std::stod(m[1].str());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  // Common flags: a small DNN so each job takes a second or two.
  static std::string Job(const std::string& name, const std::string& extra) {
    return "train --data_location=" + (*root_ / "data").string() + " --checkpoint=" +
           (*root_ / name).string() + " --hidden_units=64,32 --batch_size=256 --hang_timeout=120 " + extra;
  }
  static fs::path Folder(const std::string& name) { return *root_ / name; }
  static fs::path* root_;
  static double oracle_;
};
fs::path* LauncherTest::root_ = nullptr;
double LauncherTest::oracle_ = 0;

TEST_F(LauncherTest, OneShardOneWorkerTrainsAndEvaluates) {
  const Result r = Deepfm(Job("j1", "--learning_rate=0.002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[ps0] "), std::string::npos);
  EXPECT_NE(r.output.find("[worker0] "), std::string::npos);
  const double auc = Metric(*root_ / "j1", "auc");
  printf("1x1: AUC %.4f (oracle %.4f)\n", auc, oracle_);
  EXPECT_GT(auc, 0.70);
  EXPECT_GT(auc, oracle_ - 0.08);
  // The job's rate is its rows over the worker's training time.
  double worker_seconds = -1;
  {
    std::string w;
    ASSERT_TRUE(deepfm::ReadFile((*root_ / "j1" / "worker0.json").string(), &w).ok());
    std::smatch m;
    ASSERT_TRUE(std::regex_search(w, m, std::regex("\"train_seconds\": ([0-9.eE+-]+)"))) << w;
    worker_seconds = std::stod(m[1].str());
  }
  ASSERT_GT(worker_seconds, 0);
  EXPECT_EQ(Metric(*root_ / "j1", "job_train_rows"), 30000);
  EXPECT_NEAR(Metric(*root_ / "j1", "train_samples_per_sec"), 30000 / worker_seconds,
              1e-3 * 30000 / worker_seconds);
  EXPECT_EQ(Metric(*root_ / "j1", "bad_lines"), 0);
  EXPECT_EQ(Metric(*root_ / "j1", "global_step"), 118);  // ceil(30000 / 256)
  std::string latest;
  EXPECT_TRUE(deepfm::LatestCheckpoint((*root_ / "j1").string(), &latest).ok());
  EXPECT_TRUE(fs::exists(*root_ / "j1" / "logs" / "worker0.log"));
}

TEST_F(LauncherTest, TwoShardsTwoWorkers) {
  const Result r = Deepfm(Job("j2", "--ps_num=2 --worker_num=2 --learning_rate=0.002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[ps1] "), std::string::npos);
  EXPECT_NE(r.output.find("[worker1] "), std::string::npos);
  const double auc = Metric(*root_ / "j2", "auc");
  printf("2x2: AUC %.4f (oracle %.4f)\n", auc, oracle_);
  EXPECT_GT(auc, 0.70);
  EXPECT_EQ(Metric(*root_ / "j2", "workers"), 2);
  EXPECT_EQ(Metric(*root_ / "j2", "job_train_rows"), 30000);
  // The chief waited for worker 1: its final step counts both workers' steps.
  EXPECT_EQ(Metric(*root_ / "j2", "global_step"), 2 * 59);  // 2 x ceil(15000 / 256)
}

// Same seed, staleness 0: training to step 40, stopping, and resuming to step
// 80 gives exactly the model of one uninterrupted run to step 80, on one
// shard and on two (where every key must come back to the shard that owns it).
void ExpectResumedEqualsStraight(const std::string& ps_num) {
  const std::string common = "--staleness=0 --seed=9 --num_epochs=2 --ps_num=" + ps_num + " ";
  const std::string straight = "straight" + ps_num, resumed = "resumed" + ps_num;
  Result r = Deepfm(LauncherTest::Job(straight, common + "--steps=80"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The first leg also saves every 15 steps, keeping two: saves between
  // pushes do not change the model.
  r = Deepfm(LauncherTest::Job(resumed, common + "--steps=40 --save_steps=15 --keep_checkpoint_max=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Metric(LauncherTest::Folder(resumed), "global_step"), 40);
  EXPECT_FALSE(fs::exists(LauncherTest::Folder(resumed) / "ckpt-15")) << "kept more than 2";
  EXPECT_TRUE(fs::exists(LauncherTest::Folder(resumed) / "ckpt-30")) << "--save_steps=15 saved nothing at 30";
  EXPECT_TRUE(fs::exists(LauncherTest::Folder(resumed) / "ckpt-40"));
  r = Deepfm(LauncherTest::Job(resumed, common + "--steps=80"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("at global step 40"), std::string::npos) << r.output;
  EXPECT_EQ(Metric(LauncherTest::Folder(resumed), "global_step"), 80);
  EXPECT_EQ(Metric(LauncherTest::Folder(resumed), "auc"), Metric(LauncherTest::Folder(straight), "auc"));
  EXPECT_EQ(Metric(LauncherTest::Folder(resumed), "logloss"),
            Metric(LauncherTest::Folder(straight), "logloss"));
}

TEST_F(LauncherTest, ResumedRunEqualsUninterruptedRun) { ExpectResumedEqualsStraight("1"); }
TEST_F(LauncherTest, ResumedRunEqualsUninterruptedRunOnTwoShards) { ExpectResumedEqualsStraight("2"); }

// Every optimizer trains through real servers (two shards) and is the one
// the checkpoint records.
void ExpectOptimizerTrains(const std::string& optimizer, const std::string& rate, double min_auc) {
  const std::string name = "opt_" + optimizer;
  const Result r = Deepfm(LauncherTest::Job(name, "--ps_num=2 --optimizer=" + optimizer +
                                                      " --learning_rate=" + rate));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double auc = Metric(LauncherTest::Folder(name), "auc");
  printf("%s: AUC %.4f\n", optimizer.c_str(), auc);
  EXPECT_GT(auc, min_auc) << optimizer;
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint(LauncherTest::Folder(name).string(), &latest).ok());
  deepfm::Manifest m;
  ASSERT_TRUE(deepfm::ReadAndVerifyManifest(latest, &m).ok());
  EXPECT_EQ(m.optimizer, optimizer);
  EXPECT_EQ(m.num_shards, 2u);
}

TEST_F(LauncherTest, AdagradTrainsThroughRealServers) { ExpectOptimizerTrains("adagrad", "0.1", 0.72); }
TEST_F(LauncherTest, AdagradDecayTrainsThroughRealServers) {
  ExpectOptimizerTrains("adagraddecay", "0.1", 0.72);
}
TEST_F(LauncherTest, SgdTrainsThroughRealServers) { ExpectOptimizerTrains("sgd", "0.1", 0.68); }

TEST_F(LauncherTest, CorruptCheckpointIsRefused) {
  Result r = Deepfm(Job("corrupt", "--steps=20 --no_eval"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint((*root_ / "corrupt").string(), &latest).ok());
  const fs::path file = fs::path(latest) / deepfm::ShardFileName(0, 1);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x55');
    f.put('\xaa');
  }
  r = Deepfm(Job("corrupt", "--steps=40 --no_eval"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(file.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checksum"), std::string::npos) << r.output;
}

TEST_F(LauncherTest, UnknownFlagListsValidOnes) {
  const Result r = Deepfm("train --stepz=3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown flag --stepz"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--save_steps"), std::string::npos) << r.output;
}

TEST_F(LauncherTest, DeadWorkerStopsTheJobAndIsReported) {
  const fs::path bad = *root_ / "bad_data";
  fs::create_directories(bad);
  std::ofstream(bad / "train.csv") << "this,is,not,criteo\n";
  std::ofstream(bad / "eval.csv") << "";
  const Result r = Deepfm("train --data_location=" + bad.string() + " --checkpoint=" +
                       (*root_ / "dead").string() + " --hidden_units=8 --max_bad_fraction=0");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("worker0 died (exit code 1)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train.csv:1"), std::string::npos) << r.output;
}

// Starts `deepfm <args>` in the background with its output in `log`.
pid_t StartDeepfm(const std::string& args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec " + std::string(DEEPFM_BIN) + " " + args + " > " + log.string() + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

std::string Slurp(const fs::path& p) {
  std::string text;
  return deepfm::ReadFile(p.string(), &text).ok() ? text : std::string();
}

bool WaitForText(const fs::path& log, const std::string& text, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (Slurp(log).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Pids of processes whose command line mentions `needle`.
std::vector<pid_t> ProcessesWith(const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = Slurp(e.path() / "cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(needle) != std::string::npos && cmdline.find("/bin/sh") == std::string::npos) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

TEST_F(LauncherTest, CtrlCStopsEveryProcess) {
  const fs::path log = *root_ / "ctrlc.log";
  const std::string job = (*root_ / "ctrlc").string();
  const pid_t pid = StartDeepfm(Job("ctrlc", "--num_epochs=1000 --ps_num=2"), log);
  if (!WaitForText(log, "[worker0] worker0 step 100", 60)) {
    int st;
    WaitExit(pid, 0, &st);
    FAIL() << Slurp(log);
  }
  EXPECT_GE(ProcessesWith(job).size(), 4u);  // launcher, 2 shards, worker
  kill(pid, SIGINT);
  int st = 0;
  ASSERT_TRUE(WaitExit(pid, 30, &st)) << "the launcher ignored Ctrl-C for 30 s: " << Slurp(log);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 130) << Slurp(log);
  EXPECT_TRUE(ProcessesWith(job).empty()) << "orphans left behind";
}

TEST_F(LauncherTest, HungWorkerIsStoppedAndReported) {
  const fs::path log = *root_ / "hang.log";
  const std::string job = (*root_ / "hang").string();
  // A later flag overrides an earlier one: --hang_timeout=5 wins.
  const pid_t pid = StartDeepfm(Job("hang", "--num_epochs=1000 --hang_timeout=5"), log);
  // The worker logs its kernel choice when it builds the model; freeze it
  // right after, so the test does not depend on how fast steps run.
  if (!WaitForText(log, "DNN kernels", 60)) {
    int st;
    WaitExit(pid, 0, &st);
    FAIL() << Slurp(log);
  }
  // Freeze the worker: it stops printing without exiting.
  for (pid_t p : ProcessesWith(job)) {
    if (Slurp(fs::path("/proc") / std::to_string(p) / "cmdline").find("--task_index=0") != std::string::npos) {
      kill(p, SIGSTOP);
    }
  }
  // Frozen at once, the worker must be declared hung after 5 s; give the
  // detector 60 s before calling it broken.
  int st = 0;
  ASSERT_TRUE(WaitExit(pid, 60, &st)) << "the hang detector did not stop the job: " << Slurp(log);
  EXPECT_EQ(WEXITSTATUS(st), 1);
  const std::string out = Slurp(log);
  EXPECT_NE(out.find("worker0 printed nothing for 5 s (--hang_timeout): hung"), std::string::npos) << out;
  EXPECT_TRUE(ProcessesWith(job).empty()) << "orphans left behind";
}

}  // namespace

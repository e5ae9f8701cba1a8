// End-to-end: the real `deepfm` program runs jobs (the launcher starts
// `deepfm ps` and `deepfm worker` tasks) on small generated data. The test
// learns results from metrics.json (common/report), progress from the chief
// shard's JobStatus, and processes from /proc, never from printed lines;
// output is only searched for the error messages a user would read.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <pty.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/checkpoint_manifest.h"
#include "common/cluster_spec.h"
#include "common/report.h"
#include "rpc/security.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"
#include "worker/ps_client.h"

namespace {

namespace fs = std::filesystem;
using deepfm::JobMetrics;
using deepfm::Status;

using Result = deepfm::testing_util::ShellResult;
using deepfm::testing_util::WaitExit;

// Starts `deepfm <args>` with stdout and stderr in `log` (or captured).
pid_t Start(const std::string& args, int out_fd) {
  return deepfm::testing_util::StartShell(std::string(DEEPFM_BIN) + " " + args, out_fd);
}

// Runs `deepfm <args>` with output captured, for at most timeout_s; a run
// past it fails the test with what it printed.
Result Deepfm(const std::string& args, double timeout_s = 180) {
  Result r = deepfm::testing_util::RunShell(std::string(DEEPFM_BIN) + " " + args, timeout_s);
  EXPECT_FALSE(r.timed_out) << "deepfm " << args << " ran past " << timeout_s
                            << " s; it printed:\n" << r.output;
  return r;
}

std::string Slurp(const fs::path& p) {
  std::string text;
  return deepfm::ReadFile(p.string(), &text).ok() ? text : std::string();
}

// Pids of processes whose command line mentions every needle.
std::vector<pid_t> ProcessesWith(const std::vector<std::string>& needles) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = Slurp(e.path() / "cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    bool all = cmdline.find("/bin/sh") == std::string::npos;
    for (const std::string& n : needles) all &= cmdline.find(n) != std::string::npos;
    if (all) out.push_back(std::stoi(name));
  }
  return out;
}

// The chief shard's view of a running job, through its own cluster.json and
// token: what an operator's `deepfm status` reads.
bool JobStatus(const fs::path& job, deepfm::ps::JobStatusResponse* status) {
  deepfm::ClusterSpec spec;
  if (!deepfm::ParseClusterJson(Slurp(job / "cluster.json"), "cluster.json", &spec).ok())
    return false;
  deepfm::rpc::SecurityOptions so;
  so.auth_token_file = (job / "auth_token").string();
  deepfm::PsClientOptions co;
  if (!deepfm::rpc::Security::Load(so, &co.security).ok() || spec.ps.empty()) return false;
  co.hosts = {spec.ps[0]};
  co.connect_timeout_ms = 2000;
  co.rpc_deadline_ms = 2000;
  co.max_retries = 0;
  std::unique_ptr<deepfm::PsClient> client;
  return deepfm::PsClient::Connect(co, &client).ok() && client->JobStatus(status).ok();
}

class LauncherTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("deepfm_e2e_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    const Result r = Deepfm("gen-data --rows=30000 --eval_rows=10000 --seed=5 --out=" +
                            (*root_ / "data").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  // Common flags: a small DNN so each job takes a second or two.
  static std::string Job(const std::string& name, const std::string& extra) {
    return "train --data_location=" + (*root_ / "data").string() +
           " --checkpoint=" + Folder(name).string() +
           " --hidden_units=64,32 --batch_size=256 --hang_timeout=120 " + extra;
  }
  static fs::path Folder(const std::string& name) { return *root_ / name; }
  static JobMetrics Metrics(const std::string& name) {
    JobMetrics m;
    const Status s = deepfm::ReadJobMetrics((Folder(name) / "metrics.json").string(), &m);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return m;
  }
  static fs::path* root_;
};
fs::path* LauncherTest::root_ = nullptr;

TEST_F(LauncherTest, OneShardOneWorkerTrainsAndEvaluates) {
  const Result r = Deepfm(Job("j1", "--learning_rate=0.002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Each task's output reaches the console prefixed with its name.
  EXPECT_NE(r.output.find("[ps0] "), std::string::npos);
  EXPECT_NE(r.output.find("[worker0] "), std::string::npos);
  const JobMetrics m = Metrics("j1");
  printf("1x1: AUC %.4f\n", m.eval.auc);
  ASSERT_TRUE(m.has_eval);
  EXPECT_GT(m.eval.auc, 0.70);
  EXPECT_EQ(m.eval.rows, 10000);
  EXPECT_EQ(m.bad_lines, 0);
  EXPECT_EQ(m.global_step, 118);  // ceil(30000 / 256)
  EXPECT_EQ(m.train_rows, 30000);
  EXPECT_EQ(m.workers, 1);
  EXPECT_EQ(m.workers_reported, 1);
  // The job's rate is its rows over the worker's training time.
  deepfm::WorkerReport w;
  ASSERT_TRUE(deepfm::ReadWorkerReport((Folder("j1") / "worker0.json").string(), &w).ok());
  ASSERT_GT(w.train_seconds, 0);
  EXPECT_EQ(w.train_rows, 30000);
  EXPECT_NEAR(m.samples_per_sec(), 30000 / w.train_seconds, 1e-6 * 30000 / w.train_seconds);
  std::string latest;
  EXPECT_TRUE(deepfm::LatestCheckpoint(Folder("j1").string(), &latest).ok());
  EXPECT_TRUE(fs::exists(Folder("j1") / "logs" / "worker0.log"));
  // The spec the tasks ran from, and a token readable by its owner only.
  deepfm::ClusterSpec spec;
  ASSERT_TRUE(
      deepfm::ParseClusterJson(Slurp(Folder("j1") / "cluster.json"), "cluster.json", &spec).ok());
  EXPECT_EQ(spec.ps.size(), 1u);
  EXPECT_EQ(spec.worker.size(), 1u);
  EXPECT_EQ(fs::status(Folder("j1") / "auth_token").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(LauncherTest, TwoShardsTwoWorkers) {
  const Result r = Deepfm(Job("j2", "--ps_num=2 --worker_num=2 --learning_rate=0.002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[ps1] "), std::string::npos);
  EXPECT_NE(r.output.find("[worker1] "), std::string::npos);
  // The shards took the launcher's SIGTERM and stopped in order, not killed
  // by it (a thread of theirs with the signal unblocked would let it kill).
  EXPECT_EQ(r.output.find("stopped with"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ps:0: stopped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ps:1: stopped"), std::string::npos) << r.output;
  const JobMetrics m = Metrics("j2");
  printf("2x2: AUC %.4f\n", m.eval.auc);
  EXPECT_GT(m.eval.auc, 0.70);
  EXPECT_EQ(m.workers, 2);
  EXPECT_EQ(m.workers_reported, 2);
  EXPECT_EQ(m.ps, 2);
  EXPECT_EQ(m.train_rows, 30000);
  // The chief waited for worker 1: its final step counts both workers' steps.
  EXPECT_EQ(m.global_step, 2 * 59);  // 2 x ceil(15000 / 256)
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
  r = Deepfm(
      LauncherTest::Job(resumed, common + "--steps=40 --save_steps=15 --keep_checkpoint_max=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(LauncherTest::Metrics(resumed).global_step, 40);
  EXPECT_FALSE(fs::exists(LauncherTest::Folder(resumed) / "ckpt-15")) << "kept more than 2";
  EXPECT_TRUE(fs::exists(LauncherTest::Folder(resumed) / "ckpt-30"))
      << "--save_steps=15 saved nothing at 30";
  EXPECT_TRUE(fs::exists(LauncherTest::Folder(resumed) / "ckpt-40"));
  r = Deepfm(LauncherTest::Job(resumed, common + "--steps=80"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobMetrics a = LauncherTest::Metrics(resumed), b = LauncherTest::Metrics(straight);
  EXPECT_EQ(a.global_step, 80);
  EXPECT_EQ(a.train_rows, 40 * 256) << "the resumed leg trains only the steps after the checkpoint";
  EXPECT_EQ(a.eval.auc, b.eval.auc);
  EXPECT_EQ(a.eval.logloss, b.eval.logloss);
}

TEST_F(LauncherTest, ResumedRunEqualsUninterruptedRun) { ExpectResumedEqualsStraight("1"); }
TEST_F(LauncherTest, ResumedRunEqualsUninterruptedRunOnTwoShards) {
  ExpectResumedEqualsStraight("2");
}

// The final checkpoint's shard files of job `name`, in shard order.
std::vector<deepfm::CheckpointFile> FinalShardFiles(const std::string& name) {
  std::string latest;
  EXPECT_TRUE(deepfm::LatestCheckpoint(LauncherTest::Folder(name).string(), &latest).ok()) << name;
  deepfm::Manifest m;
  EXPECT_TRUE(deepfm::ReadAndVerifyManifest(latest, &m).ok()) << latest;
  return m.files;
}

// The stand-alone job is the distributed path's oracle: with staleness 0 it
// trains bit for bit like a 1-shard, 1-worker job over gRPC, to the same
// loss, AUC and shard files (every row, slot and step the same bytes).
TEST_F(LauncherTest, StandaloneTrainsBitForBitLikeAOneShardOneWorkerJob) {
  const std::string common = "--staleness=0 --seed=11 --save_steps=40 ";
  Result r = Deepfm(Job("oracle_grpc", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Deepfm(Job("oracle_standalone", common + "--standalone"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobMetrics g = Metrics("oracle_grpc"), a = Metrics("oracle_standalone");
  EXPECT_EQ(a.global_step, g.global_step);
  EXPECT_EQ(a.train_rows, 30000);
  EXPECT_EQ(a.eval.auc, g.eval.auc);
  EXPECT_EQ(a.eval.logloss, g.eval.logloss);
  deepfm::WorkerReport wg, wa;
  ASSERT_TRUE(deepfm::ReadWorkerReport(
                  (Folder("oracle_grpc") / deepfm::WorkerReportFileName(0)).string(), &wg)
                  .ok());
  ASSERT_TRUE(deepfm::ReadWorkerReport(
                  (Folder("oracle_standalone") / deepfm::WorkerReportFileName(0)).string(), &wa)
                  .ok());
  EXPECT_EQ(wa.last_loss, wg.last_loss);
  const auto fg = FinalShardFiles("oracle_grpc"), fa = FinalShardFiles("oracle_standalone");
  ASSERT_EQ(fa.size(), 1u);
  ASSERT_EQ(fg.size(), 1u);
  EXPECT_EQ(fa[0].bytes, fg[0].bytes);
  EXPECT_EQ(fa[0].crc32c, fg[0].crc32c) << "the shards' final states differ";
  // One process: no shard was started, so no token was made for one.
  EXPECT_FALSE(fs::exists(Folder("oracle_standalone") / "auth_token"));
}

// Their checkpoints are the same files: a stand-alone job stopped at step
// 40, resumed over gRPC on two shards to 60, then stand-alone again to 80,
// ends as one uninterrupted stand-alone run to step 80 does.
TEST_F(LauncherTest, StandaloneAndDistributedJobsResumeEachOther) {
  const std::string common = "--staleness=0 --seed=9 --num_epochs=2 ";
  Result r = Deepfm(Job("sa_straight", common + "--standalone --steps=80"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Deepfm(Job("sa_resumed", common + "--standalone --steps=40"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The middle leg cuts its dense variables into slices over 3 shards: its
  // checkpoint holds slices, which the last leg's one shard puts together.
  r = Deepfm(Job("sa_resumed", common + "--ps_num=3 --dense_slice_kb=1 --steps=60"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Metrics("sa_resumed").global_step, 60);
  deepfm::WorkerReport w;
  ASSERT_TRUE(deepfm::ReadWorkerReport((Folder("sa_resumed") / "worker0.json").string(), &w).ok());
  ASSERT_EQ(w.shard_dense_bytes_per_step.size(), 3u);
  uint64_t dense = 0;
  for (uint64_t b : w.shard_dense_bytes_per_step) dense += b;
  for (uint64_t b : w.shard_dense_bytes_per_step) EXPECT_LT(b, 0.4 * dense) << "not partitioned";
  r = Deepfm(Job("sa_resumed", common + "--standalone --steps=80"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobMetrics a = Metrics("sa_resumed"), b = Metrics("sa_straight");
  EXPECT_EQ(a.global_step, 80);
  EXPECT_EQ(a.train_rows, 20 * 256) << "the last leg trains only the steps after the checkpoint";
  EXPECT_EQ(a.eval.auc, b.eval.auc);
  EXPECT_EQ(a.eval.logloss, b.eval.logloss);
}

TEST_F(LauncherTest, StandaloneRefusesSeveralWorkers) {
  const Result r = Deepfm(Job("sa_two", "--standalone --worker_num=2"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--standalone runs one trainer"), std::string::npos) << r.output;
}

// Every optimizer trains through real servers (two shards) and is the one
// the checkpoint records. Staleness 0 makes each run deterministic, so the
// bounds hold every time.
void ExpectOptimizerTrains(const std::string& name, const std::string& flags, double min_auc,
                           const std::string& optimizer) {
  const Result r = Deepfm(LauncherTest::Job(name, "--ps_num=2 --staleness=0 " + flags));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double auc = LauncherTest::Metrics(name).eval.auc;
  printf("%s: AUC %.4f\n", name.c_str(), auc);
  EXPECT_GT(auc, min_auc) << name;
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint(LauncherTest::Folder(name).string(), &latest).ok());
  deepfm::Manifest m;
  ASSERT_TRUE(deepfm::ReadAndVerifyManifest(latest, &m).ok());
  EXPECT_EQ(m.optimizer, optimizer);
  EXPECT_EQ(m.num_shards, 2u);
}

uint64_t TableRows(const JobMetrics& m) {
  uint64_t n = 0;
  for (const auto& [name, t] : m.tables) n += t.rows;
  return n;
}

// Admission through the real programs: with --ev_filter_freq=2 a key seen
// in one batch only never gets a row, so the job on this long-tailed data
// creates far fewer rows, and still learns about as well; metrics.json
// reports the tables summed over both shards.
TEST_F(LauncherTest, FeatureAdmissionCutsRowsAndStillLearns) {
  const std::string common = "--ps_num=2 --staleness=0 --learning_rate=0.002 ";
  Result r = Deepfm(Job("ev_plain", common));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Deepfm(Job("ev_filter2", common + "--ev_filter_freq=2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobMetrics plain = Metrics("ev_plain"), filtered = Metrics("ev_filter2");
  ASSERT_EQ(plain.tables.size(), 1u);
  ASSERT_EQ(filtered.tables.size(), 1u);
  const deepfm::TableMetrics& t = filtered.tables.begin()->second;
  printf("rows %llu -> %llu; AUC %.4f -> %.4f\n", static_cast<unsigned long long>(TableRows(plain)),
         static_cast<unsigned long long>(TableRows(filtered)), plain.eval.auc, filtered.eval.auc);
  EXPECT_LT(TableRows(filtered), TableRows(plain) * 7 / 10);
  EXPECT_EQ(t.admitted, t.rows);  // nothing evicted: every row was admitted
  EXPECT_GT(t.filtered, 0u);
  // Every distinct key of the plain job was seen, and its first push dropped.
  EXPECT_EQ(t.filtered_grads, TableRows(plain));
  EXPECT_EQ(plain.tables.begin()->second.admitted, 0u);
  EXPECT_GT(filtered.eval.auc, 0.70);
  EXPECT_NEAR(filtered.eval.auc, plain.eval.auc, 0.01);
}

// A memory budget far below the table's size holds on the shard while the
// job still trains every row of data.
TEST_F(LauncherTest, AMemoryBudgetBoundsTheTables) {
  Result r = Deepfm(Job("ev_budget", "--ps_memory_budget_mb=4 --learning_rate=0.002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobMetrics m = Metrics("ev_budget");
  ASSERT_EQ(m.tables.size(), 1u);
  const deepfm::TableMetrics& t = m.tables.begin()->second;
  EXPECT_EQ(m.train_rows, 30000);
  EXPECT_GT(t.evicted_budget, 0u);
  EXPECT_LE(t.bytes, 4u << 20);
  EXPECT_GT(m.eval.auc, 0.6);
}

// The chief's TensorBoard event files (train/ and eval/, as tf.estimator
// writes them) parse back through an independent reader of the TFRecord
// framing and the Event messages (tests/obs/read_tfevents.py: its own CRC
// and protobuf decoding), with the expected tags at increasing steps.
TEST_F(LauncherTest, TensorBoardEventsParseBackThroughAnIndependentReader) {
  const Result r = Deepfm(Job("events", "--ps_num=2 --log_every=20 --learning_rate=0.002"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string cmd = "/usr/bin/python3 " + std::string(DEEPFM_SOURCE_DIR) +
                          "/tests/obs/read_tfevents.py " + (Folder("events") / "train").string() + " " +
                          (Folder("events") / "eval").string();
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << "the reader refused the files: " << out;
  const nlohmann::json doc = nlohmann::json::parse(out);
  const auto& train = doc.at((Folder("events") / "train").string());
  const auto& eval = doc.at((Folder("events") / "eval").string());
  ASSERT_EQ(train.size(), 1u);
  ASSERT_EQ(eval.size(), 1u);
  EXPECT_EQ(train[0].at("file_version"), "brain.Event:2");
  std::map<std::string, std::vector<int64_t>> steps;
  for (const auto& s : train[0].at("scalars")) steps[s[1].get<std::string>()].push_back(s[0].get<int64_t>());
  for (const char* tag : {"loss", "learning_rate", "samples_per_sec", "global_step/sec",
                          "step_time/wait_us", "step_time/compute_us", "step_time/handoff_us"}) {
    ASSERT_EQ(steps[tag].size(), 5u) << tag;  // 118 steps, logged every 20
    for (size_t i = 1; i < steps[tag].size(); ++i) EXPECT_LT(steps[tag][i - 1], steps[tag][i]) << tag;
  }
  for (const auto& s : train[0].at("scalars")) {
    if (s[1] == "learning_rate") {
      EXPECT_NEAR(s[2].get<double>(), 0.002, 1e-9);
    }
  }
  // The split is per step of each interval: over the five intervals (steps
  // 1..100) it adds up to about 100/118 of the worker's whole compute time.
  deepfm::WorkerReport w;
  ASSERT_TRUE(deepfm::ReadWorkerReport((Folder("events") / "worker0.json").string(), &w).ok());
  double interval_compute = 0;
  for (const auto& s : train[0].at("scalars")) {
    if (s[1] == "step_time/compute_us") interval_compute += 20 * s[2].get<double>();
  }
  const double ratio = interval_compute / (w.split_us.at("compute") * w.local_steps);
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 1.2);
  // Each shard's table rows and bytes at every interval and at the end, as
  // the tables grew.
  std::vector<int64_t> table_steps = steps["loss"];  // the intervals' global steps
  table_steps.push_back(118);
  EXPECT_EQ(steps["tables/deepfm/embedding/shard0/rows"], table_steps);
  EXPECT_EQ(steps["tables/deepfm/embedding/shard1/bytes"], table_steps);
  double last_rows = 0;
  for (const auto& s : train[0].at("scalars")) {
    if (s[1] != "tables/deepfm/embedding/shard0/rows") continue;
    EXPECT_GT(s[2].get<double>(), last_rows);  // new keys keep arriving on this data
    last_rows = s[2].get<double>();
  }
  std::map<std::string, double> at_end;
  for (const auto& s : eval[0].at("scalars")) {
    EXPECT_EQ(s[0].get<int64_t>(), 118);
    at_end[s[1].get<std::string>()] = s[2].get<double>();
  }
  const JobMetrics m = Metrics("events");
  EXPECT_NEAR(at_end["auc"], m.eval.auc, 1e-6);
  EXPECT_NEAR(at_end["logloss"], m.eval.logloss, 1e-6);
  EXPECT_NEAR(at_end["accuracy"], m.eval.accuracy, 1e-6);
}

// On a terminal (a pseudo-terminal here) the launcher keeps one
// self-updating status line with the percentage, rate, ETA and loss, and
// erases it before its last lines; on a pipe (every other test) it draws
// nothing.
// --timeline N: every N-th step of the trainer leaves a Chrome trace with
// its stages and both shards' handling, on one time axis: each shard's
// handling of a call lies inside the trainer's span of that call.
TEST_F(LauncherTest, ATimelineLaysTrainerAndShardsOnOneClock) {
  const Result r = Deepfm(Job("timeline", "--ps_num=2 --timeline=50 --save_steps=50 --no_eval"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 118 steps: steps 50 and 100, nothing else.
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(Folder("timeline"))) {
    const std::string n = e.path().filename().string();
    if (n.rfind("timeline-", 0) == 0) files.push_back(n);
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files, (std::vector<std::string>{"timeline-100.json", "timeline-50.json"}));
  for (const std::string& name : files) {
    SCOPED_TRACE(name);
    const nlohmann::json doc = nlohmann::json::parse(Slurp(Folder("timeline") / name));
    std::map<int, std::string> process;
    std::map<std::pair<int, int>, std::string> track;
    struct Span {
      std::string process, track, name;
      int64_t ts, dur;
    };
    std::vector<Span> spans;
    for (const auto& e : doc.at("traceEvents")) {
      if (e.at("ph") == "M" && e.at("name") == "process_name") {
        process[e.at("pid")] = e.at("args").at("name");
      } else if (e.at("ph") == "M" && e.at("name") == "thread_name") {
        track[{e.at("pid"), e.at("tid")}] = e.at("args").at("name");
      }
    }
    for (const auto& e : doc.at("traceEvents")) {
      if (e.at("ph") != "X") continue;
      spans.push_back({process.at(e.at("pid")), track.at({e.at("pid"), e.at("tid")}),
                       e.at("name"), e.at("ts"), e.at("dur")});
    }
    auto find = [&](const std::string& proc, const std::string& trk, const std::string& n) {
      std::vector<Span> out;
      for (const Span& s : spans) {
        if (s.process == proc && s.track == trk && s.name == n) out.push_back(s);
      }
      return out;
    };
    for (const auto& [trk, n] : std::vector<std::pair<std::string, std::string>>{
             {"prefetch", "read"}, {"prefetch", "dedup"}, {"prefetch", "pull"},
             {"compute", "forward"}, {"compute", "backward"}, {"push", "push"}}) {
      EXPECT_EQ(find("worker:0", trk, n).size(), 1u) << trk << "/" << n;
    }
    EXPECT_GE(find("worker:0", "compute", "gemm").size(), 3u);  // 3 layers forward, more back
    for (int shard = 0; shard < 2; ++shard) {
      const std::string ps = "ps:" + std::to_string(shard);
      for (const std::string method : {"Pull", "Push"}) {
        std::string lower = method;
        lower[0] = static_cast<char>(std::tolower(lower[0]));
        const auto outer = find("worker:0", lower + " " + ps, method);
        const auto inner = find(ps, "requests", method);
        ASSERT_EQ(outer.size(), 1u) << ps << " " << method;
        ASSERT_EQ(inner.size(), 1u) << ps << " " << method;
        EXPECT_LE(outer[0].ts, inner[0].ts) << ps << " " << method;
        EXPECT_LE(inner[0].ts + inner[0].dur, outer[0].ts + outer[0].dur) << ps << " " << method;
      }
      EXPECT_EQ(find(ps, "requests", "lookup").size(), 1u) << ps;
      EXPECT_EQ(find(ps, "requests", "apply sparse").size(), 1u) << ps;
    }
    if (name == "timeline-50.json") {
      // --save_steps=50: the chief cut a snapshot at this step; shard 0 held
      // pushes for it inside the chief's call.
      const auto outer = find("worker:0", "cut ps:0", "Cut");
      const auto inner = find("ps:0", "requests", "Cut (pushes held)");
      ASSERT_EQ(outer.size(), 1u);
      ASSERT_EQ(inner.size(), 1u);
      EXPECT_LE(outer[0].ts, inner[0].ts);
      EXPECT_LE(inner[0].ts + inner[0].dur, outer[0].ts + outer[0].dur);
      EXPECT_EQ(find("worker:0", "push", "checkpoint").size(), 1u);
    }
  }
  // Off by default: a job without the flag writes none.
  const Result plain = Deepfm(Job("no_timeline", "--steps=60 --no_eval"));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  for (const auto& e : fs::directory_iterator(Folder("no_timeline"))) {
    EXPECT_NE(e.path().filename().string().rfind("timeline-", 0), 0u) << e.path();
  }
}

// Runs tests/obs/check_report.py (an independent XML parser) on a report.
nlohmann::json CheckReport(const fs::path& report) {
  const std::string cmd = "/usr/bin/python3 " + std::string(DEEPFM_SOURCE_DIR) +
                          "/tests/obs/check_report.py " + report.string();
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return nullptr;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int code = pclose(pipe);
  EXPECT_EQ(code, 0) << report << ": " << out;
  return code == 0 ? nlohmann::json::parse(out) : nlohmann::json(nullptr);
}

// Every job writes report.html, well-formed XHTML with one inline SVG chart
// per series and nothing fetched; `deepfm report A B` overlays two jobs.
TEST_F(LauncherTest, TheReportIsWellFormedWithOneChartPerSeries) {
  const Result a = Deepfm(Job("report_a", "--ps_num=2 --log_every=20"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const Result b = Deepfm(Job("report_b", "--standalone --log_every=20 --learning_rate=0.003"));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  const std::vector<std::string> series = {"loss", "samples_per_sec", "step_time",
                                           "table_rows", "auc", "logloss"};
  for (const char* job : {"report_a", "report_b"}) {
    SCOPED_TRACE(job);
    const nlohmann::json r = CheckReport(Folder(job) / "report.html");
    ASSERT_FALSE(r.is_null());
    EXPECT_EQ(r.at("scripts"), 0);
    EXPECT_TRUE(r.at("external").empty()) << r.at("external");
    EXPECT_EQ(r.at("tables"), 3);  // summary, flags, machine
    ASSERT_EQ(r.at("charts").size(), series.size()) << r.at("charts");
    for (const std::string& id : series) {
      ASSERT_TRUE(r.at("charts").contains(id)) << id;
      const auto& c = r.at("charts").at(id);
      EXPECT_GT(c.at("points").get<int>() + c.at("bars").get<int>(), 0) << id;
    }
    // 118 steps logged every 20: five intervals, raw and smoothed.
    EXPECT_EQ(r.at("charts").at("loss").at("lines").size(), 2u);
    EXPECT_EQ(r.at("charts").at("step_time").at("bars"), 5 * 3);
  }
  const fs::path both = Folder("report_a") / "both.html";
  const Result c = Deepfm("report --report_file=" + both.string() + " " + Folder("report_a").string() +
                          " " + Folder("report_b").string());
  ASSERT_EQ(c.exit_code, 0) << c.output;
  const nlohmann::json r = CheckReport(both);
  ASSERT_FALSE(r.is_null());
  const auto& loss = r.at("charts").at("loss").at("lines");
  ASSERT_EQ(loss.size(), 4u) << loss;  // each job's raw and smoothed
  EXPECT_EQ(loss[0], "report_a raw");
  EXPECT_EQ(loss[1], "report_a");
  EXPECT_EQ(loss[2], "report_b raw");
  EXPECT_EQ(r.at("charts").at("auc").at("lines"), nlohmann::json({"report_a", "report_b"}));
  EXPECT_EQ(r.at("charts").at("step_time").at("bars"), 2 * 3);  // one bar per job
  // A folder that is no job is refused, naming it.
  const Result bad = Deepfm("report " + (Folder("report_a") / "logs").string());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("not a job folder"), std::string::npos) << bad.output;
}

// Runs `deepfm <args>` under a pseudo-terminal and checks its bar: drawn at
// least twice with total, rate, ETA and loss, never under a line starting
// with `task_line`, erased before the summary.
void ExpectProgressBar(const std::string& args, const std::string& task_line, const std::string& total) {
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = "exec " + std::string(DEEPFM_BIN) + " " + args;
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  std::string out;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(master, buf, sizeof(buf))) > 0) out.append(buf, n);  // EIO once the child is gone
  });
  int st = 0;
  const bool exited = deepfm::testing_util::WaitExit(pid, 120, &st);
  reader.join();
  close(master);
  ASSERT_TRUE(exited) << out;
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  const std::string erase = "\r\033[K";
  size_t draws = 0;
  for (size_t at = 0; (at = out.find(erase + "[", at)) != std::string::npos; ++at) ++draws;
  EXPECT_GE(draws, 2u) << out;
  EXPECT_NE(out.find("/" + total + "  "), std::string::npos) << out;
  EXPECT_NE(out.find(" samples/s  ETA "), std::string::npos) << out;
  EXPECT_NE(out.find("  loss 0."), std::string::npos) << out;
  // Every task line starts on a clean line: after a newline, or after the
  // bar was erased.
  size_t lines = 0;
  for (size_t at = 0; (at = out.find(task_line, at)) != std::string::npos; ++at, ++lines) {
    ASSERT_GT(at, 0u);
    const bool clean = out[at - 1] == '\n' || (at >= erase.size() && out.compare(at - erase.size(), erase.size(), erase) == 0);
    EXPECT_TRUE(clean) << "a task line drawn over the bar at byte " << at << ":\n" << out;
  }
  // The bar is erased before the job's summary, which then stands alone.
  const size_t done = out.find("deepfm: done in");
  ASSERT_NE(done, std::string::npos) << out;
  EXPECT_LT(out.rfind(erase + "["), done);
  EXPECT_NE(out.rfind(erase, done), std::string::npos);
  EXPECT_GE(lines, 9u) << out;  // a line every 100 steps: none lost on the way
}

// A job on a pipe draws nothing.
void ExpectNoBarOnAPipe(const std::string& args) {
  const Result plain = Deepfm(args);
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(plain.output.find('\r'), std::string::npos);
}

TEST_F(LauncherTest, AProgressBarUpdatesOnATerminalOnly) {
  // 8 passes over 30,000 rows at 256 a step: about 938 steps.
  ExpectProgressBar(Job("bar", "--num_epochs=8 --no_eval --learning_rate=0.002"),
                    "[worker0] worker:0 step", "938");
  ExpectNoBarOnAPipe(Job("bar_plain", "--no_eval --steps=20"));
}

// A stand-alone job has no supervisor: its own lines pass through pipes so
// the bar is erased before each and redrawn after.
TEST_F(LauncherTest, AStandaloneJobDrawsTheBarToo) {
  // 24 passes (about 2,800 steps, some seconds): heartbeats, which carry the loss, come once a second.
  ExpectProgressBar(Job("bar_sa", "--standalone --num_epochs=24 --no_eval --learning_rate=0.002"),
                    "worker:0 step", "2,813");
  ExpectNoBarOnAPipe(Job("bar_sa_plain", "--standalone --no_eval --steps=20"));
}

TEST_F(LauncherTest, AdagradAndAdagradDecayTrainThroughRealServers) {
  ExpectOptimizerTrains("opt_adagrad", "--optimizer=adagrad --learning_rate=0.1", 0.72, "adagrad");
  // A decay every 20 steps: the shards must apply it, so the model differs
  // from plain adagrad's.
  ExpectOptimizerTrains(
      "opt_adagraddecay",
      "--optimizer=adagraddecay --learning_rate=0.1 --decay_period=20 --decay_rate=0.5", 0.72,
      "adagraddecay");
  EXPECT_NE(Metrics("opt_adagrad").eval.auc, Metrics("opt_adagraddecay").eval.auc)
      << "--decay_period did not reach the shards";
}

TEST_F(LauncherTest, SgdTrainsThroughRealServers) {
  ExpectOptimizerTrains("opt_sgd", "--optimizer=sgd --learning_rate=0.1", 0.70, "sgd");
}

// A damaged latest checkpoint is refused, naming the newest one that
// verifies and the flag that resumes from it; that flag then works.
TEST_F(LauncherTest, CorruptCheckpointIsRefused) {
  Result r = Deepfm(Job("corrupt", "--steps=20 --save_steps=10 --no_eval"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint(Folder("corrupt").string(), &latest).ok());
  ASSERT_EQ(fs::path(latest).filename(), "ckpt-20");
  ASSERT_TRUE(fs::exists(Folder("corrupt") / "ckpt-10"));
  const fs::path file = fs::path(latest) / deepfm::ShardFileName(0, 1);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x55');
    f.put('\xaa');
  }
  r = Deepfm(Job("corrupt", "--steps=40 --no_eval"), 60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("ps:0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(file.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checksum"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--restore_checkpoint=ckpt-10"), std::string::npos) << r.output;
  r = Deepfm(Job("corrupt", "--steps=40 --no_eval --restore_checkpoint=ckpt-10"), 60);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(deepfm::LatestCheckpoint(Folder("corrupt").string(), &latest).ok());
  EXPECT_EQ(fs::path(latest).filename(), "ckpt-40");
  deepfm::Manifest m;
  EXPECT_TRUE(deepfm::ReadAndVerifyManifest(latest, &m).ok());
}

TEST_F(LauncherTest, UnknownFlagListsValidOnes) {
  const Result r = Deepfm("train --stepz=3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown flag --stepz"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--save_steps"), std::string::npos) << r.output;
  // A worker flag is not a shard's.
  const Result ps = Deepfm("ps --batch_size=5");
  EXPECT_EQ(ps.exit_code, 2);
  EXPECT_NE(ps.output.find("unknown flag --batch_size"), std::string::npos) << ps.output;
}

// Bad values are refused up front, naming the flag and what it accepts,
// before any process starts or any data is written.
TEST_F(LauncherTest, BadFlagsAreRefusedBeforeAnythingStarts) {
  const fs::path job = Folder("bad_flags");
  const fs::path typo = *root_ / "no_such_data";
  struct Case {
    std::string flags, expect;
  } cases[] = {
      {"--embedding_dim=0", "--embedding_dim=0: must lie in [1, 1024]"},
      {"--steps=-5", "--steps=-5: must be >= 0"},
      {"--batch_size=0", "--batch_size=0: must lie in [1, 1048576]"},
      {"--hidden_units=1024,abc", "--hidden_units=1024,abc: 'abc' is not a layer width"},
      {"--optimizer=adamw", "--optimizer=adamw: must be one of adam, adamasync"},
      {"--learning_rate=-1", "--learning_rate=-1: must be a positive number"},
      {"--ps_num=0", "--ps_num=0: must lie in [1, 4096]"},
      {"--data_location=" + typo.string(),
       "--data_location=" + typo.string() + " holds no training data"},
  };
  for (const Case& c : cases) {
    const Result r = Deepfm("train --checkpoint=" + job.string() + " " + c.flags, 30);
    EXPECT_EQ(r.exit_code, 2) << c.flags << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.flags << "\n" << r.output;
    EXPECT_FALSE(fs::exists(job)) << c.flags
                                  << ": the job folder was made before the flags were checked";
  }
  EXPECT_FALSE(fs::exists(typo)) << "data was generated into an explicit --data_location";
}

TEST_F(LauncherTest, DeadWorkerStopsTheJobAndIsReported) {
  const fs::path bad = *root_ / "bad_data";
  fs::create_directories(bad);
  std::ofstream(bad / "train.csv") << "this,is,not,criteo\n";
  std::ofstream(bad / "eval.csv") << "";
  const Result r =
      Deepfm("train --data_location=" + bad.string() + " --checkpoint=" + Folder("dead").string() +
                 " --hidden_units=8 --max_bad_fraction=0 --feature_spec=criteo",
             60);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("worker:0 (127.0.0.1:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("died (exit code 1)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train.csv:1"), std::string::npos) << r.output;
}

TEST_F(LauncherTest, CtrlCStopsEveryProcess) {
  const fs::path log = *root_ / "ctrlc.log";
  const fs::path job = Folder("ctrlc");
  FILE* out = fopen(log.c_str(), "w");
  const pid_t pid = Start(Job("ctrlc", "--num_epochs=1000 --ps_num=2"), fileno(out));
  fclose(out);
  // Training is under way once the chief shard has heard of steps. Bounded
  // by time (each try may wait for a connection) and by the job's own end.
  bool training = false;
  int st = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!training && std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      FAIL() << "the job ended before it trained: " << Slurp(log);
    deepfm::ps::JobStatusResponse status;
    training = JobStatus(job, &status) && status.workers_size() == 1 &&
               status.workers(0).local_step() >= 20;
    if (!training) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!training) {
    WaitExit(pid, 0, &st);
    FAIL() << "the job never reported 20 steps: " << Slurp(log);
  }
  EXPECT_GE(ProcessesWith({job.string()}).size(), 4u);  // launcher, 2 shards, worker
  kill(pid, SIGINT);
  ASSERT_TRUE(WaitExit(pid, 30, &st)) << "the launcher ignored Ctrl-C for 30 s: " << Slurp(log);
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 130) << Slurp(log);
  EXPECT_TRUE(ProcessesWith({job.string()}).empty()) << "orphans left behind";
}

// A trainer frozen from its start never sends a heartbeat: the launcher
// must call it hung after --hang_timeout and stop the job.
TEST_F(LauncherTest, HungWorkerIsStoppedAndReported) {
  const fs::path log = *root_ / "hang.log";
  const fs::path job = Folder("hang");
  FILE* out = fopen(log.c_str(), "w");
  // A later flag overrides an earlier one: --hang_timeout=3 wins.
  const pid_t pid = Start(Job("hang", "--num_epochs=1000 --hang_timeout=3"), fileno(out));
  fclose(out);
  bool frozen = false;
  int st = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!frozen && std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      FAIL() << "the job ended before its worker started: " << Slurp(log);
    for (pid_t p : ProcessesWith({job.string(), " worker "})) frozen |= kill(p, SIGSTOP) == 0;
    if (!frozen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!frozen) {
    WaitExit(pid, 0, &st);
    FAIL() << "no worker process appeared: " << Slurp(log);
  }
  // Frozen at once, it must be declared hung after 3 s; give the detector
  // 60 s before calling it broken.
  ASSERT_TRUE(WaitExit(pid, 60, &st)) << "the hang detector did not stop the job: " << Slurp(log);
  EXPECT_EQ(WEXITSTATUS(st), 1);
  const std::string text = Slurp(log);
  EXPECT_NE(text.find("worker:0 (127.0.0.1:"), std::string::npos) << text;
  EXPECT_NE(text.find("sent no heartbeat"), std::string::npos) << text;
  EXPECT_NE(text.find("--hang_timeout 3 s"), std::string::npos) << text;
  EXPECT_TRUE(ProcessesWith({job.string()}).empty()) << "orphans left behind";
}

// A shard listening beyond loopback without a token refuses to start.
TEST_F(LauncherTest, ShardBeyondLoopbackNeedsATokenOrInsecure) {
  const std::string spec =
      R"({"cluster":{"ps":["10.255.255.1:2222"],"worker":["10.255.255.2:2222"]},)"
      R"("task":{"type":"ps","index":0}})";
  const fs::path spec_file = *root_ / "remote_spec.json";
  ASSERT_TRUE(deepfm::WriteFileAtomic(spec_file.string(), spec).ok());
  const Result r = Deepfm(
      "ps --cluster_spec=" + spec_file.string() + " --checkpoint=" + Folder("remote").string(), 30);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("would listen on 0.0.0.0:2222 without a token"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--insecure"), std::string::npos) << r.output;
  // The spec says ps; `deepfm worker` refuses to run it.
  const Result w = Deepfm("worker --cluster_spec=" + spec_file.string(), 30);
  EXPECT_EQ(w.exit_code, 2) << w.output;
  EXPECT_NE(w.output.find("says this task is ps:0, but the command is 'deepfm worker'"),
            std::string::npos)
      << w.output;
}

}  // namespace

namespace {

// The pid of a running task of job folder `job`: its TF_CONFIG names its
// place (the launcher starts every task with the same flags).
pid_t TaskPid(const fs::path& job, const std::string& type, int index) {
  const std::string place =
      "\"task\":{\"index\":" + std::to_string(index) + ",\"type\":\"" + type + "\"}";
  for (pid_t p : ProcessesWith({job.string(), type == "ps" ? " ps " : " worker "})) {
    if (Slurp("/proc/" + std::to_string(p) + "/environ").find(place) != std::string::npos) return p;
  }
  return -1;
}

// A job running in the background, its output collected.
class BackgroundJob {
 public:
  explicit BackgroundJob(const std::string& args) {
    if (pipe(fds_) != 0) return;
    pid_ = Start(args, fds_[1]);
    close(fds_[1]);
    reader_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fds_[0], buf, sizeof(buf))) > 0) output_.append(buf, n);
    });
  }
  ~BackgroundJob() {
    if (pid_ > 0 && !waited_) {
      kill(pid_, SIGTERM);
      int st;
      WaitExit(pid_, 30, &st);
    }
    if (reader_.joinable()) reader_.join();
    close(fds_[0]);
  }
  bool running() { return pid_ > 0 && waitpid(pid_, &status_, WNOHANG) == 0; }
  Result Wait(double timeout_s) {
    int st = 0;
    const bool exited = WaitExit(pid_, timeout_s, &st);
    waited_ = exited;
    if (reader_.joinable()) reader_.join();
    EXPECT_TRUE(exited) << "the job ran past " << timeout_s << " s";
    return {exited && WIFEXITED(st) ? WEXITSTATUS(st) : -1, output_};
  }

 private:
  int fds_[2] = {-1, -1};
  pid_t pid_ = -1;
  int status_ = 0;
  bool waited_ = false;
  std::thread reader_;
  std::string output_;
};

// Waits until the job's chief shard reports at least `step` and the job has
// a committed checkpoint; false if the job ended or 120 s passed first.
bool WaitForStepAndCheckpoint(BackgroundJob& job, const fs::path& folder, int64_t step) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && job.running()) {
    deepfm::ps::JobStatusResponse status;
    std::string latest;
    if (JobStatus(folder, &status) && status.global_step() >= step &&
        deepfm::LatestCheckpoint(folder.string(), &latest).ok()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// --metrics_port: every task serves a Prometheus page at its own port
// (shard i at BASE+i, the trainer after them), scraped here over HTTP with
// the job's token while the job trains. The shards' counters agree with the
// trainer's: each applied every key the trainer pushed to it.
// The first of `n` consecutive loopback ports that were all free (bound at
// once, then let go); 0 if none were found.
int FreePorts(int n) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::vector<int> fds;
    int got = 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int first = 20000 + (getpid() * 7 + attempt * 97) % 30000;
    for (int i = 0; i < n; ++i) {
      fds.push_back(socket(AF_INET, SOCK_STREAM, 0));
      a.sin_port = htons(static_cast<uint16_t>(first + i));
      if (bind(fds.back(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) ++got;
    }
    for (int fd : fds) close(fd);
    if (got == n) return first;
  }
  return 0;
}

// The README's TF_CONFIG commands with another folder per task: the trainer
// refuses before its first step, naming both folders and the flag, instead
// of failing at its final save after a whole epoch.
TEST_F(LauncherTest, ATrainerAndAShardWithDifferentFoldersAreRefusedBeforeTheFirstStep) {
  const int base = FreePorts(2);
  ASSERT_GT(base, 0);
  const std::string cluster = "\"cluster\":{\"ps\":[\"127.0.0.1:" + std::to_string(base) +
                              "\"],\"worker\":[\"127.0.0.1:" + std::to_string(base + 1) + "\"]}";
  const fs::path ps_spec = *root_ / "folders_ps.json", worker_spec = *root_ / "folders_worker.json";
  ASSERT_TRUE(deepfm::WriteFileAtomic(ps_spec.string(),
                                      "{" + cluster + ",\"task\":{\"type\":\"ps\",\"index\":0}}")
                  .ok());
  ASSERT_TRUE(deepfm::WriteFileAtomic(
                  worker_spec.string(),
                  "{" + cluster + ",\"task\":{\"type\":\"worker\",\"index\":0}}")
                  .ok());
  const fs::path a = Folder("folders_a"), b = Folder("folders_b");
  BackgroundJob shard("ps --cluster_spec=" + ps_spec.string() + " --checkpoint=" + a.string());
  const Result w =
      Deepfm("worker --cluster_spec=" + worker_spec.string() + " --checkpoint=" + b.string() +
                 " --data_location=" + (*root_ / "data").string() +
                 " --hidden_units=64,32 --batch_size=256",
             120);
  EXPECT_NE(w.exit_code, 0) << w.output;
  EXPECT_NE(w.output.find("keeps its checkpoints in " + a.string()), std::string::npos) << w.output;
  EXPECT_NE(w.output.find("job folder is " + b.string()), std::string::npos) << w.output;
  EXPECT_NE(w.output.find("--checkpoint"), std::string::npos) << w.output;
  EXPECT_EQ(w.output.find("step 1"), std::string::npos) << "trained before refusing:\n" << w.output;
  EXPECT_FALSE(fs::exists(b / "checkpoint"));
}

// A shard restarted alone (what a plain StatefulSet does with a crashed pod)
// restores the last checkpoint while its peer trained on: it refuses to
// serve and says why, instead of silently setting its part of the model back.
TEST_F(LauncherTest, ALoneRestartedShardBehindItsPeerRefusesToServe) {
  const int base = FreePorts(3);
  ASSERT_GT(base, 0);
  auto host = [&](int i) { return "\"127.0.0.1:" + std::to_string(base + i) + "\""; };
  const std::string cluster = "\"cluster\":{\"ps\":[" + host(0) + "," + host(1) +
                              "],\"worker\":[" + host(2) + "]}";
  auto spec = [&](const std::string& type, int index) {
    const fs::path p = *root_ / ("lone_" + type + std::to_string(index) + ".json");
    EXPECT_TRUE(deepfm::WriteFileAtomic(p.string(), "{" + cluster + ",\"task\":{\"type\":\"" +
                                                        type + "\",\"index\":" +
                                                        std::to_string(index) + "}}")
                    .ok());
    return p.string();
  };
  const fs::path folder = Folder("lone_shard");
  const std::string job = " --checkpoint=" + folder.string();
  const std::string ps1 = "ps --cluster_spec=" + spec("ps", 1) + job;
  BackgroundJob shard0("ps --cluster_spec=" + spec("ps", 0) + job);
  auto shard1 = std::make_unique<BackgroundJob>(ps1);
  BackgroundJob worker("worker --cluster_spec=" + spec("worker", 0) + job +
                       " --data_location=" + (*root_ / "data").string() +
                       " --hidden_units=64,32 --batch_size=256 --num_epochs=50 --save_steps=20");
  // Wait for a checkpoint and for training to go past it.
  deepfm::PsClientOptions co;
  co.hosts = {"127.0.0.1:" + std::to_string(base)};
  co.connect_timeout_ms = 30000;
  std::unique_ptr<deepfm::PsClient> client;
  ASSERT_TRUE(deepfm::PsClient::Connect(co, &client).ok());
  std::string latest;
  int64_t step = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && worker.running()) {
    int64_t saved = 0;
    if (deepfm::LatestCheckpoint(folder.string(), &latest).ok() &&
        deepfm::ParseCheckpointFolderName(fs::path(latest).filename().string(), &saved) &&
        client->GlobalStep(&step).ok() && step >= saved + 5) {
      break;
    }
    step = 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(step, 0) << "the job did not train past a checkpoint";
  shard1.reset();  // SIGTERM, as a pod's deletion; the engine starts it again alone
  const Result again = Deepfm(ps1, 60);
  EXPECT_NE(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("shard 1 restored step"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("is at global step"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("restart the whole job"), std::string::npos) << again.output;
}

TEST_F(LauncherTest, EveryTaskServesPrometheusMetricsWhileTraining) {
  const int base = FreePorts(3);
  ASSERT_GT(base, 0);
  BackgroundJob job(Job("prom", "--ps_num=2 --num_epochs=6 --metrics_port=" + std::to_string(base)));
  std::string token;
  int64_t steps = 0;
  deepfm::testing_util::HttpReply trainer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && job.running()) {
    if (token.empty()) {
      std::ifstream f(Folder("prom") / "auth_token");
      f >> token;
    }
    trainer = deepfm::testing_util::HttpGet(base + 2, "/metrics", token);
    if (trainer.status == 200) {
      const double v =
          deepfm::testing_util::PromValue(trainer.body, "deepfm_worker_steps_total", {{"task", "worker:0"}});
      if (v >= 150) {  // past the first --log_every interval: samples/s is set
        steps = static_cast<int64_t>(v);
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(steps, 150) << "no trainer page showed 150 steps; job output:\n" << job.Wait(60).output;
  const std::map<std::string, std::string> w{{"task", "worker:0"}};
  const double pushed = deepfm::testing_util::PromValue(trainer.body, "deepfm_worker_keys_pushed_total", w);
  EXPECT_GT(pushed, 0);
  EXPECT_GT(deepfm::testing_util::PromValue(trainer.body, "deepfm_data_rows_total", w), 150 * 256 - 1);
  EXPECT_GE(deepfm::testing_util::PromValue(trainer.body, "deepfm_rpc_client_seconds_count",
                                    {{"task", "worker:0"}, {"method", "Pull"}}),
            steps);
  EXPECT_GT(deepfm::testing_util::PromValue(trainer.body, "deepfm_worker_samples_per_second", w), 0);
  const double trainer_pushes = deepfm::testing_util::PromValue(
      trainer.body, "deepfm_rpc_client_seconds_count", {{"task", "worker:0"}, {"method", "Push"}});
  EXPECT_GE(trainer_pushes, steps - 3);  // at most staleness + 2 steps in flight
  double shard_pushed = 0;
  for (int i = 0; i < 2; ++i) {
    const std::string task = "ps:" + std::to_string(i);
    EXPECT_EQ(deepfm::testing_util::HttpGet(base + i, "/metrics").status, 401) << task;
    const auto page = deepfm::testing_util::HttpGet(base + i, "/metrics", token);
    ASSERT_EQ(page.status, 200) << task;
    shard_pushed += deepfm::testing_util::PromValue(page.body, "deepfm_ps_pushed_keys_total", {{"task", task}});
    EXPECT_GT(deepfm::testing_util::PromValue(page.body, "deepfm_ps_table_rows",
                                      {{"task", task}, {"table", "deepfm/embedding"}}),
              0)
        << task;
    // Every push the trainer had finished when it was scraped, this shard
    // had handled (the trainer's pushes trail its computed steps).
    EXPECT_GE(deepfm::testing_util::PromValue(page.body, "deepfm_rpc_server_seconds_count",
                                              {{"task", task}, {"method", "Push"}}),
              trainer_pushes)
        << task;
  }
  // The shards were scraped after the trainer: they have applied at least
  // every key it had pushed by then.
  EXPECT_GE(shard_pushed, pushed);
  const Result r = job.Wait(180);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// A stand-alone job's one page serves its in-process shards' Stats beside
// the trainer's metrics.
TEST_F(LauncherTest, AStandaloneJobsPageServesItsShardsToo) {
  const int port = FreePorts(1);
  ASSERT_GT(port, 0);
  BackgroundJob job(Job("prom_sa", "--standalone --ps_num=2 --num_epochs=20 --no_eval --metrics_port=" +
                                       std::to_string(port)));
  deepfm::testing_util::HttpReply page;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && job.running()) {
    page = deepfm::testing_util::HttpGet(port, "/metrics");
    if (page.status == 200 && deepfm::testing_util::PromValue(page.body, "deepfm_worker_steps_total",
                                                              {{"task", "worker:0"}}) >= 100) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(page.status, 200) << job.Wait(60).output;
  for (const std::string task : {"ps:0", "ps:1"}) {
    EXPECT_GT(deepfm::testing_util::PromValue(page.body, "deepfm_ps_pushed_keys_total", {{"task", task}}), 0)
        << task << "\n" << page.body;
    EXPECT_GT(deepfm::testing_util::PromValue(page.body, "deepfm_ps_table_rows",
                                              {{"task", task}, {"table", "deepfm/embedding"}}),
              0)
        << task;
  }
  const Result r = job.Wait(180);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Kills one task of a 2-shard, 2-worker job with SIGKILL at about 40 % and
// checks that the job finishes on its own, trains every row of the epoch
// once counting from where each trainer resumed, and ends within `auc_tol`
// of an uninterrupted run.
// 120k rows: on 30k, two uninterrupted async runs differ by up to 0.004 in
// AUC; on 120k by under 0.001, so the tolerance measures the recovery.
const fs::path& RecoveryData() {
  static const fs::path data = [] {
    const fs::path d = LauncherTest::Folder("data120k");
    const Result r =
        Deepfm("gen-data --rows=120000 --eval_rows=20000 --seed=5 --out=" + d.string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return d;
  }();
  return data;
}

void ExpectRecoversFromKill(const std::string& name, const std::string& type, int index,
                            const std::string& says) {
  const std::string flags = "--ps_num=2 --worker_num=2 --seed=3 --save_steps=50 --data_location=" +
                            RecoveryData().string() + " ";
  constexpr int64_t kRows = 120000;
  const std::string straight = "rec_straight_" + name;
  Result r = Deepfm(LauncherTest::Job(straight, flags));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const JobMetrics base = LauncherTest::Metrics(straight);

  const fs::path folder = LauncherTest::Folder("rec_" + name);
  BackgroundJob job(LauncherTest::Job("rec_" + name, flags));
  ASSERT_TRUE(WaitForStepAndCheckpoint(job, folder, base.global_step * 4 / 10))
      << "the job ended before 40 %: " << job.Wait(60).output;
  const pid_t victim = TaskPid(folder, type, index);
  ASSERT_GT(victim, 0) << "no " << type << ":" << index << " process";
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  r = job.Wait(180);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(says), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("training again"), std::string::npos) << r.output;
  const JobMetrics m = LauncherTest::Metrics("rec_" + name);
  printf("%s: killed %s:%d; AUC %.4f (uninterrupted %.4f); %lld rows resumed past + %lld trained\n",
         name.c_str(), type.c_str(), index, m.eval.auc, base.eval.auc,
         static_cast<long long>(m.resumed_rows), static_cast<long long>(m.train_rows));
  EXPECT_GT(m.resumed_rows, 0) << "nothing was resumed: the kill did not interrupt training";
  EXPECT_EQ(m.resumed_rows + m.train_rows, kRows) << "rows were skipped or trained twice";
  EXPECT_NEAR(m.eval.auc, base.eval.auc, 0.003);
}

}  // namespace

TEST_F(LauncherTest, AKilledShardRestartsTheJobFromItsCheckpoint) {
  ExpectRecoversFromKill("shard", "ps", 1, "restarting every task from the newest good checkpoint");
}

TEST_F(LauncherTest, AKilledWorkerRejoinsTheLiveShardsAlone) {
  ExpectRecoversFromKill("worker", "worker", 1, "restarts alone");
}

// SIGKILL a shard while it writes a checkpoint: the previous checkpoint
// still verifies and restores, and recovery finishes the job from it.
TEST_F(LauncherTest, AShardKilledDuringASaveLeavesThePreviousCheckpoint) {
  const fs::path folder = Folder("kill_saving");
  BackgroundJob job(Job("kill_saving", "--save_steps=10 --num_epochs=2 --data_location=" +
                                           RecoveryData().string()));
  // Catch a save in progress: its ckpt-<step>.tmp folder exists while the
  // shard writes and until the chief commits it.
  std::string saving, before;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (saving.empty() && job.running() && std::chrono::steady_clock::now() < deadline) {
    // The committed one first: a .tmp with a higher step is a save under way.
    if (!deepfm::LatestCheckpoint(folder.string(), &before).ok()) continue;  // none to keep yet
    int64_t committed = 0;
    deepfm::ParseCheckpointFolderName(fs::path(before).filename().string(), &committed);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      const std::string n = e.path().filename().string();
      int64_t step = 0;
      if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp" &&
          deepfm::ParseCheckpointFolderName(n.substr(0, n.size() - 4), &step) && step > committed) {
        saving = n;
      }
    }
  }
  ASSERT_FALSE(saving.empty()) << "never saw a save in progress: " << job.Wait(60).output;
  const pid_t shard = TaskPid(folder, "ps", 0);
  ASSERT_GT(shard, 0);
  ASSERT_EQ(kill(shard, SIGKILL), 0);
  // Right after the kill, before any restart: the newest committed
  // checkpoint verifies (the half-written one was never committed).
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint(folder.string(), &latest).ok());
  deepfm::Manifest m;
  const Status verified = deepfm::ReadAndVerifyManifest(latest, &m);
  EXPECT_TRUE(verified.ok()) << verified.ToString();
  // Usually the interrupted save was never committed; when its commit beat
  // the kill by a hair, the new checkpoint is whole, which is as good.
  const bool committed = fs::path(latest).filename().string() + ".tmp" == saving;
  const Result r = job.Wait(180);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("restarting every task"), std::string::npos) << r.output;
  printf("killed ps:0 while %s was being written (%s); recovered from %s\n", saving.c_str(),
         committed ? "it committed just before the kill" : "never committed", latest.c_str());
}

// Positions recorded under one data layout would train rows twice or skip
// them under another: a resume with another batch size is refused, naming
// the change and the way out, and --reset_data_position takes that way.
TEST_F(LauncherTest, AResumeWithAnotherLayoutIsRefusedUnlessPositionsAreReset) {
  Result r = Deepfm(Job("layout", "--steps=20 --no_eval"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Deepfm(Job("layout", "--steps=40 --no_eval --batch_size=128"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--batch_size was 256, now 128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--reset_data_position"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("restarting"), std::string::npos)
      << "a refusal is not a crash: nothing to restart\n"
      << r.output;
  r = Deepfm(Job("layout", "--steps=40 --no_eval --batch_size=128 --reset_data_position"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  deepfm::WorkerReport w;
  ASSERT_TRUE(deepfm::ReadWorkerReport((Folder("layout") / "worker0.json").string(), &w).ok());
  EXPECT_EQ(w.resumed_rows, 0) << "--reset_data_position starts at the beginning of the data";
  EXPECT_EQ(w.train_rows, 20 * 128);
}

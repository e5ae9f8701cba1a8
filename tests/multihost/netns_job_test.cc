// A real multi-host job: three hosts made of Linux network namespaces on a
// bridge (each with its own address in 10.213.0.0/24 and its own hosts file,
// so tasks dial each other by host name), 2 shards and 2 workers spread over
// them, started from the TF_CONFIG each would get from a TFJob, with mutual
// TLS and a token. It checks that the job trains like a local one, that a
// client without the token is refused from another host, and that killing one
// host's shard stops the whole job within 30 s naming that shard.
//
// Needs root (CI runs as root). Where namespaces cannot be made the test
// FAILS saying so: it is never skipped. It touches nothing outside the
// namespaces it creates (named dfm<pid>*), and removes them, their hosts
// files and their processes at the end.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "tests/support/process.h"

namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::string text;
  return deepfm::ReadFile(p.string(), &text).ok() ? text : std::string();
}

// Runs a shell command; returns its exit status and, in *out, what it printed.
int Sh(const std::string& cmd, std::string* out = nullptr) {
  std::string text;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  const int st = pclose(p);
  if (out) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

using deepfm::testing_util::WaitExit;

class NetnsJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prefix_ = new std::string("dfm" + std::to_string(getpid()));
    root_ = new fs::path(fs::temp_directory_path() / (*prefix_ + "_multihost"));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    ip_ = new std::string;
    ASSERT_EQ(Sh("command -v ip", ip_), 0)
        << "the ip command (iproute2) is missing; scripts/install_deps.sh installs it";
    while (!ip_->empty() && ip_->back() == '\n') ip_->pop_back();
    ASSERT_EQ(geteuid(), 0u)
        << "this test builds hosts from network namespaces and must run as root (CI does); "
           "it is not skipped";
    std::string out;
    RemoveStaleNamespaces();
    // A switch namespace holds the bridge, so the machine's own network is
    // never touched; each host gets a veth pair into it.
    const std::string sw = *prefix_ + "s";
    std::string setup = *ip_ + " netns add " + sw + " && " + *ip_ + " -n " + sw +
                        " link add br0 type bridge && " + *ip_ + " -n " + sw + " link set br0 up";
    for (int i = 0; i < 3; ++i) {
      const std::string h = Host(i), veth = "v" + std::to_string(i);
      setup += " && " + *ip_ + " netns add " + h + " && " + *ip_ + " -n " + sw + " link add " +
               veth + " type veth peer name eth0 netns " + h + " && " + *ip_ + " -n " + sw +
               " link set " + veth + " master br0 up && " + *ip_ + " -n " + h + " addr add " +
               Address(i) + "/24 dev eth0 && " + *ip_ + " -n " + h + " link set eth0 up && " +
               *ip_ + " -n " + h + " link set lo up";
    }
    ASSERT_EQ(Sh(setup, &out), 0)
        << "cannot create network namespaces (" << out
        << "): this test needs root and a kernel that allows ip netns; it is not skipped";
    // Each host resolves the others by name: `ip netns exec` mounts
    // /etc/netns/<name>/hosts over /etc/hosts.
    std::string hosts = "127.0.0.1 localhost\n";
    for (int i = 0; i < 3; ++i) hosts += Address(i) + " " + Host(i) + "\n";
    for (int i = 0; i < 3; ++i) {
      fs::create_directories("/etc/netns/" + Host(i));
      ASSERT_TRUE(deepfm::WriteFileAtomic("/etc/netns/" + Host(i) + "/hosts", hosts).ok());
    }
    ASSERT_EQ(Sh(std::string(DEEPFM_MAKE_CERTS) + " " + (*root_ / "tls").string() + " " + Host(0) +
                     " " + Host(1) + " " + Host(2),
                 &out),
              0)
        << out;
    ASSERT_EQ(
        Sh(std::string(DEEPFM_BIN) + " gen-data --rows=100000 --eval_rows=20000 --seed=5 --out=" +
               (*root_ / "data").string(),
           &out),
        0)
        << out;
    // The cluster as a TFJob would describe it: ps on hosts 0 and 1, workers
    // on hosts 1 and 2.
    const std::string spec = "{\"cluster\": {\"ps\": [\"" + Host(0) + ":2222\", \"" + Host(1) +
                             ":2222\"], \"worker\": [\"" + Host(1) + ":2223\", \"" + Host(2) +
                             ":2222\"]}}";
    ASSERT_TRUE(deepfm::WriteFileAtomic((*root_ / "spec.json").string(), spec).ok());
  }

  static void TearDownTestSuite() {
    for (const std::string& ns : {*prefix_ + "s", Host(0), Host(1), Host(2)}) {
      Sh(*ip_ + " netns pids " + ns + " | xargs -r kill -9");
      Sh(*ip_ + " netns del " + ns);
      fs::remove_all("/etc/netns/" + ns);
    }
    fs::remove_all(*root_);
    delete prefix_;
    delete root_;
    delete ip_;
  }

  // Namespaces of earlier runs of this test whose process is gone (one
  // stopped by the watchdog never reached its TearDown): only names of this
  // test's own pattern, dfm<pid>{s,a,b,c}.
  static void RemoveStaleNamespaces() {
    std::string list;
    Sh(*ip_ + " netns list", &list);
    std::istringstream in(list);
    for (std::string line; std::getline(in, line);) {
      const std::string ns = line.substr(0, line.find(' '));
      if (ns.size() < 5 || ns.rfind("dfm", 0) != 0 ||
          std::string("sabc").find(ns.back()) == std::string::npos) {
        continue;
      }
      const std::string pid = ns.substr(3, ns.size() - 4);
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (fs::exists("/proc/" + pid)) continue;
      Sh(*ip_ + " netns pids " + ns + " | xargs -r kill -9");
      Sh(*ip_ + " netns del " + ns);
      fs::remove_all("/etc/netns/" + ns);
    }
  }

  static std::string Host(int i) { return *prefix_ + static_cast<char>('a' + i); }
  static std::string Address(int i) { return "10.213.0." + std::to_string(i + 1); }
  static std::string Tls() {
    const fs::path t = *root_ / "tls";
    return " --tls_cert=" + (t / "tls.crt").string() + " --tls_key=" + (t / "tls.key").string() +
           " --tls_ca=" + (t / "ca.pem").string();
  }
  static std::string Token() { return " --auth_token_file=" + (*root_ / "tls" / "token").string(); }
  static std::string Model() {
    return " --data_location=" + (*root_ / "data").string() +
           " --hidden_units=64,32 --batch_size=256 --learning_rate=0.002 --seed=7 --staleness=0";
  }
  // `deepfm train` inside host 0, starting each task on its host.
  static std::string NetnsJob(const std::string& name, const std::string& extra) {
    return "exec " + *ip_ + " netns exec " + Host(0) + " " + DEEPFM_BIN +
           " train --cluster_spec=" + (*root_ / "spec.json").string() + " --launch_prefix='" +
           *ip_ + " netns exec {host}'" + Tls() + Token() +
           " --checkpoint=" + (*root_ / name).string() + Model() + extra;
  }
  static deepfm::JobMetrics Metrics(const std::string& name) {
    deepfm::JobMetrics m;
    const deepfm::Status s = deepfm::ReadJobMetrics((*root_ / name / "metrics.json").string(), &m);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return m;
  }
  // Pids of processes in host `i`'s namespace whose command line has `needle`.
  static std::vector<pid_t> ProcessesIn(int i, const std::string& needle) {
    struct stat want;
    std::vector<pid_t> out;
    if (stat(("/run/netns/" + Host(i)).c_str(), &want) != 0) return out;
    for (const auto& e : fs::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      struct stat ns;
      if (stat((e.path() / "ns" / "net").c_str(), &ns) != 0 || ns.st_ino != want.st_ino) continue;
      std::string cmd = Slurp(e.path() / "cmdline");
      for (char& c : cmd) c = c == '\0' ? ' ' : c;
      if (cmd.find(needle) != std::string::npos) out.push_back(std::stoi(name));
    }
    return out;
  }

  static std::string* prefix_;
  static fs::path* root_;
  static std::string* ip_;
};
std::string* NetnsJobTest::prefix_ = nullptr;
fs::path* NetnsJobTest::root_ = nullptr;
std::string* NetnsJobTest::ip_ = nullptr;

TEST_F(NetnsJobTest, TrainsAcrossHostsLikeALocalJob) {
  std::string out;
  ASSERT_EQ(Sh(NetnsJob("netns", ""), &out), 0) << out;
  ASSERT_EQ(Sh(std::string("exec ") + DEEPFM_BIN +
                   " train --ps_num=2 --worker_num=2 --checkpoint=" + (*root_ / "local").string() +
                   Model(),
               &out),
            0)
      << out;
  const deepfm::JobMetrics netns = Metrics("netns"), local = Metrics("local");
  printf("AUC across 3 namespace hosts (TLS + token): %.4f; local 2x2 job: %.4f\n", netns.eval.auc,
         local.eval.auc);
  EXPECT_NEAR(netns.eval.auc, local.eval.auc, 0.005);
  EXPECT_EQ(netns.train_rows, 100000);
  EXPECT_EQ(netns.workers, 2);
  EXPECT_EQ(netns.workers_reported, 2);
  EXPECT_EQ(netns.ps, 2);
  // Every shard wrote its part of the checkpoint into the shared job folder.
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint((*root_ / "netns").string(), &latest).ok());
  deepfm::Manifest m;
  ASSERT_TRUE(deepfm::ReadAndVerifyManifest(latest, &m).ok());
  EXPECT_EQ(m.num_shards, 2u);
}

TEST_F(NetnsJobTest, StrangersAreRefusedAndADeadShardStopsTheJob) {
  const fs::path log = *root_ / "kill.log";
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd =
        NetnsJob("kill", " --num_epochs=1000 --save_steps=20 --max_restarts=0") + " > " +
        log.string() + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  // Training is under way once the first checkpoint is committed.
  bool training = false;
  int st = 0;
  for (int i = 0; i < 600 && !training; ++i) {
    if (waitpid(pid, &st, WNOHANG) == pid)
      FAIL() << "the job ended before it trained: " << Slurp(log);
    std::string latest;
    training = deepfm::LatestCheckpoint((*root_ / "kill").string(), &latest).ok();
    if (!training) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!training) {
    WaitExit(pid, 0, &st);
    FAIL() << "no checkpoint within 60 s: " << Slurp(log);
  }
  // From host 2, a client with the job's certificates but without its token
  // is refused; with the token it is answered.
  const std::string status = "exec " + *ip_ + " netns exec " + Host(2) + " " + DEEPFM_BIN +
                             " status --ps_hosts=" + Host(0) + ":2222" + Tls();
  std::string out;
  EXPECT_EQ(Sh(status, &out), 1) << out;
  EXPECT_NE(out.find("requires 'authorization: Bearer <token>'"), std::string::npos) << out;
  EXPECT_EQ(Sh(status + Token(), &out), 0) << out;

  // Kill host 1's shard; with recovery off the whole job must stop within
  // 30 s, naming it.
  const std::vector<pid_t> shard = ProcessesIn(1, " ps ");
  ASSERT_EQ(shard.size(), 1u) << "expected one shard process on " << Host(1);
  const auto killed = std::chrono::steady_clock::now();
  kill(shard[0], SIGKILL);
  ASSERT_TRUE(WaitExit(pid, 30, &st))
      << "the job ran on for 30 s after its shard died: " << Slurp(log);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  printf("from killing ps:1 to the launcher's exit: %.2f s\n", seconds);
  EXPECT_EQ(WEXITSTATUS(st), 1);
  const std::string text = Slurp(log);
  EXPECT_NE(text.find("ps:1 (" + Host(1) + ":2222) died (killed by signal 9"), std::string::npos)
      << text;
  EXPECT_NE(text.find("not restarting: --max_restarts=0"), std::string::npos) << text;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(ProcessesIn(i, (*root_ / "kill").string()).empty())
        << "a task of the job still runs on " << Host(i);
  }
}

}  // namespace

#include "launcher/train_job.h"

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <map>
#include <filesystem>
#include <memory>
#include <sstream>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "common/timing.h"
#include "launcher/job_flags.h"
#include "launcher/local_cluster.h"
#include "launcher/supervisor.h"
#include "rpc/health.h"
#include "rpc/job_status.h"
#include "tools/datagen.h"
#include "worker/ps_client.h"

namespace deepfm::launcher {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_stop_signal{0};
void OnStopSignal(int sig) { g_stop_signal = sig; }

std::string Timestamp() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", std::localtime(&t));
  return buf;
}

// The default data folder gets generated data when it has none; an explicit
// one was checked to hold data by ValidateFlags.
Status PrepareData(const FlagSet& f) {
  const std::string data = f.Get("data_location");
  std::string train, eval;
  if (!IsDefaultDataLocation(f) || FindDataFiles(data, false, &train, &eval).ok()) return Status::Ok();
  DataGenOptions go;
  go.out_dir = data;
  go.train_rows = f.GetInt("gen_rows");
  go.eval_rows = std::max<int64_t>(1000, go.train_rows / 5);
  go.seed = 2026;
  printf("deepfm: no training data in %s; generating %lld train / %lld eval rows (Criteo schema, planted model)\n",
         data.c_str(), static_cast<long long>(go.train_rows), static_cast<long long>(go.eval_rows));
  fflush(stdout);
  DataGenReport r;
  Status s = GenerateCriteoData(go, &r);
  if (!s.ok()) return s;
  printf("deepfm: wrote %s and %s in %.1f s; oracle eval AUC %.4f (the best any model can do)\n",
         r.train_path.c_str(), r.eval_path.c_str(), r.seconds, r.oracle_auc);
  return Status::Ok();
}

// The job's token: the user's file, or a fresh random one in the job folder
// (readable by its owner only). Returns the file every task is given.
Status PrepareToken(const FlagSet& f, const fs::path& job, std::string* token_file) {
  if (!f.Get("auth_token_file").empty()) {
    *token_file = f.Get("auth_token_file");
    return Status::Ok();
  }
  *token_file = (job / "auth_token").string();
  Status s = WriteFileAtomic(*token_file, rpc::RandomToken() + "\n");
  if (s.ok() && chmod(token_file->c_str(), 0600) != 0) s = Internal("chmod " + *token_file);
  return s;
}

class Job {
 public:
  Job(const FlagSet& flags, std::string self, fs::path folder, ClusterSpec spec, rpc::Security security,
      std::string token_file)
      : flags_(flags),
        self_(std::move(self)),
        folder_(std::move(folder)),
        spec_(std::move(spec)),
        security_(std::move(security)),
        token_file_(std::move(token_file)) {}

  int Run() {
    Status s = StartShards();
    if (s.ok()) s = StartTrainers();
    if (!s.ok()) return Fail(s.message(), -1, /*tail_included=*/true);
    const int code = Supervise();
    if (code != 0) return code;
    StopShards();
    return Summarize();
  }

 private:
  struct Task {
    std::string name;     // "ps:1", "worker:0", "chief:0"
    std::string address;
    int child = -1;
  };

  // The command that runs `task_type`:`index` on its host.
  ChildSpec TaskCommand(const std::string& type, int index, const std::string& address) {
    ChildSpec c;
    c.name = type + std::to_string(index);
    std::string host;
    int port = 0;
    SplitHostPort(address, &host, &port);
    std::istringstream prefix(flags_.Get("launch_prefix"));
    for (std::string word; prefix >> word;) {
      for (size_t at; (at = word.find("{host}")) != std::string::npos;) word.replace(at, 6, host);
      c.argv.push_back(word);
    }
    c.argv.push_back(self_);
    c.argv.push_back(type == "ps" ? "ps" : "worker");
    const Command role = type == "ps" ? kPs : kWorker;
    for (const std::string& a : ForwardedFlags(flags_, role, {"checkpoint", "output_dir", "auth_token_file",
                                                              "cluster_spec", "ps_hosts", "worker_hosts",
                                                              "job_name", "task_index"})) {
      c.argv.push_back(a);
    }
    c.argv.push_back("--checkpoint=" + folder_.string());
    c.argv.push_back("--auth_token_file=" + token_file_);
    ClusterSpec task = spec_;
    task.task_type = type;
    task.task_index = index;
    c.env.push_back("TF_CONFIG=" + ClusterJson(task));
    c.log_path = (folder_ / "logs" / (c.name + ".log")).string();
    return c;
  }

  Status Spawn(const std::string& type, int index, const std::string& address, std::vector<Task>* into) {
    Task t{type + ":" + std::to_string(index), address, -1};
    Status s = sup_.Spawn(TaskCommand(type, index, address), &t.child);
    if (!s.ok()) return Internal("starting " + t.name + ": " + s.message());
    into->push_back(t);
    return Status::Ok();
  }

  Status StartShards() {
    for (size_t i = 0; i < spec_.ps.size(); ++i) {
      Status s = Spawn("ps", static_cast<int>(i), spec_.ps[i], &shards_);
      if (!s.ok()) return s;
    }
    // Ready means serving: the standard health check, not a printed line.
    std::map<int, int> exited;  // child -> wait status
    for (const Task& t : shards_) {
      Status s = rpc::WaitForServing(t.address, security_, std::chrono::seconds(120), [&] {
        sup_.Pump(0);
        for (auto [child, st] : sup_.Reap()) exited[child] = st;
        return !exited.count(t.child) && !g_stop_signal;
      });
      if (g_stop_signal) return Status(Code::kUnavailable, "interrupted");
      if (!exited.empty()) {
        const Task& dead = TaskOf(exited.begin()->first);
        sup_.Pump(0);
        return Status(Code::kUnavailable, dead.name + " (" + dead.address + ") exited during start-up (" +
                                              DescribeExit(exited.begin()->second) + ")" + TailOf(dead.child));
      }
      if (!s.ok()) {
        return Status(Code::kUnavailable, t.name + " (" + t.address + ") did not become ready: " + s.message() +
                                              TailOf(t.child));
      }
    }
    return Status::Ok();
  }

  Status StartTrainers() {
    for (size_t i = 0; i < spec_.chief.size(); ++i) {
      Status s = Spawn("chief", static_cast<int>(i), spec_.chief[i], &trainers_);
      if (!s.ok()) return s;
    }
    for (size_t i = 0; i < spec_.worker.size(); ++i) {
      Status s = Spawn("worker", static_cast<int>(i), spec_.worker[i], &trainers_);
      if (!s.ok()) return s;
    }
    PsClientOptions co;
    co.hosts = spec_.ps;
    co.security = security_;
    co.rpc_deadline_ms = 5000;
    co.connect_timeout_ms = 30000;
    co.max_retries = 0;
    return PsClient::Connect(co, &status_client_);
  }

  // Until every trainer has exited: a non-zero exit, a dead shard, a hung
  // trainer or a stop signal ends the job. Returns 0 when all trainers
  // succeeded, else the exit code.
  int Supervise() {
    const double hang_timeout = static_cast<double>(flags_.GetInt("hang_timeout"));
    size_t finished = 0;
    int64_t next_check = NowNanos();
    while (finished < trainers_.size()) {
      sup_.Pump(200);
      for (auto [child, st] : sup_.Reap()) {
        const Task& t = TaskOf(child);
        const bool trainer = &t >= trainers_.data() && &t < trainers_.data() + trainers_.size();
        if (trainer && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
          ++finished;
          continue;
        }
        return Fail(t.name + " (" + t.address + ") died (" + DescribeExit(st) + ")", child);
      }
      if (g_stop_signal) {
        fprintf(stderr, "deepfm: signal %d: stopping every task\n", g_stop_signal.load());
        sup_.StopAll(5000);
        return 130;
      }
      if (NowNanos() >= next_check) {
        next_check = NowNanos() + 1000000000LL;
        ps::JobStatusResponse status;
        // An unreachable chief shard shows up as its process dying, or as
        // the trainers failing; here it only postpones the check.
        if (status_client_->JobStatus(&status).ok()) {
          const rpc::StuckTrainer stuck = rpc::FindStuckTrainer(status, hang_timeout);
          if (stuck.found() && stuck.index < static_cast<int>(trainers_.size())) {
            const Task& t = trainers_[stuck.index];
            return Fail(t.name + " (" + t.address + ") stopped the job: " + stuck.why, t.child);
          }
        }
      }
    }
    return 0;
  }

  void StopShards() {
    // Trainers are done: stop the shards in order (SIGTERM -> graceful shutdown).
    for (const Task& t : shards_) sup_.Signal(t.child, SIGTERM);
    const int64_t deadline = NowNanos() + 30LL * 1000000000;
    size_t left = shards_.size();
    while (left > 0 && NowNanos() < deadline) {
      sup_.Pump(100);
      for (auto [child, st] : sup_.Reap()) {
        --left;
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
          fprintf(stderr, "deepfm: %s stopped with %s\n", TaskOf(child).name.c_str(), DescribeExit(st).c_str());
        }
      }
    }
    sup_.StopAll(1000);
  }

  int Summarize() {
    JobMetrics m;
    const std::string path = (folder_ / "metrics.json").string();
    Status s = ReadJobMetrics(path, &m);
    if (!s.ok()) {
      fprintf(stderr, "deepfm: the chief's metrics: %s\n", s.message().c_str());
      return 1;
    }
    printf("deepfm: done in %.1f s: %.0f samples/s over %d worker(s)", wall_.Seconds(), m.samples_per_sec(),
           m.workers);
    if (m.has_eval) {
      printf("; eval AUC %.4f logloss %.4f accuracy %.4f", m.eval.auc, m.eval.logloss, m.eval.accuracy);
    }
    printf("\ndeepfm: metrics in %s\n", path.c_str());
    return 0;
  }

  const Task& TaskOf(int child) const {
    for (const auto* list : {&shards_, &trainers_}) {
      for (const Task& t : *list) {
        if (t.child == child) return t;
      }
    }
    static const Task unknown{"?", "?", -1};
    return unknown;
  }

  std::string TailOf(int child) const {
    return child >= 0 ? "; its last lines:\n" + sup_.Tail(child) : "";
  }

  int Fail(const std::string& why, int child, bool tail_included = false) {
    const std::string tail = tail_included ? "" : TailOf(child);
    fprintf(stderr, "deepfm: %s%s\n", why.c_str(), tail.c_str());
    sup_.StopAll(5000);
    fprintf(stderr, "deepfm: job failed; logs in %s\n", (folder_ / "logs").c_str());
    return 1;
  }

  const FlagSet& flags_;
  const std::string self_;
  const fs::path folder_;
  const ClusterSpec spec_;
  const rpc::Security security_;
  const std::string token_file_;
  Supervisor sup_;
  std::vector<Task> shards_, trainers_;
  std::unique_ptr<PsClient> status_client_;
  Stopwatch wall_;
};

}  // namespace

int RunTrainJob(const FlagSet& f, const std::string& self) {
  if (f.GetInt("timeline") > 0) printf("deepfm: --timeline is accepted but timelines are not written yet\n");
  Status s = PrepareData(f);
  if (!s.ok()) {
    fprintf(stderr, "deepfm: generating data: %s\n", s.message().c_str());
    return 1;
  }
  // The job folder: --checkpoint, else a fresh model_DeepFM_<timestamp>.
  fs::path folder = f.Get("checkpoint");
  if (folder.empty()) folder = fs::path(f.Get("output_dir")) / ("model_DeepFM_" + Timestamp());
  folder = fs::absolute(folder);
  std::error_code ec;
  fs::create_directories(folder / "logs", ec);
  if (ec) {
    fprintf(stderr, "deepfm: cannot create %s: %s\n", folder.c_str(), ec.message().c_str());
    return 1;
  }
  fs::remove(folder / "metrics.json", ec);

  ClusterSpec spec;
  std::string origin = "local job";
  if (f.Get("cluster_spec").empty()) {
    s = LocalClusterSpec(static_cast<int>(f.GetInt("ps_num")), static_cast<int>(f.GetInt("worker_num")), &spec);
  } else {
    ClusterSources src;
    src.spec_file = f.Get("cluster_spec");
    s = ResolveClusterSpec(src, /*need_task=*/false, &spec, &origin);
  }
  std::string token_file;
  if (s.ok()) s = PrepareToken(f, folder, &token_file);
  rpc::Security security;
  if (s.ok()) {
    FlagSet with_token = f;
    with_token.Set("auth_token_file", token_file);
    s = LoadSecurity(with_token, &security);
  }
  if (s.ok()) s = WriteFileAtomic((folder / "cluster.json").string(), ClusterJson(spec) + "\n");
  if (!s.ok()) {
    fprintf(stderr, "deepfm: %s\n", s.message().c_str());
    return 1;
  }
  printf("deepfm: job folder %s (%zu ps, %d trainers; cluster spec %s)\n", folder.c_str(), spec.ps.size(),
         spec.num_trainers(), origin.c_str());
  fflush(stdout);

  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  Job job(f, self, folder, spec, security, token_file);
  return job.Run();
}

}  // namespace deepfm::launcher

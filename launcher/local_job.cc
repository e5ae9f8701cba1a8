#include "launcher/local_job.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "common/checkpoint_manifest.h"
#include "common/timing.h"
#include "launcher/supervisor.h"
#include "tools/datagen.h"

namespace deepfm::launcher {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_stop_signal{0};
void OnStopSignal(int sig) { g_stop_signal = sig; }

// Finds a sibling program: next to the launcher, or in the build tree's
// ps/ or worker/ folder beside launcher/.
std::string FindProgram(const std::string& self, const std::string& name, const std::string& subdir) {
  const fs::path dir = fs::path(self).parent_path();
  for (const fs::path& p : {dir / name, dir.parent_path() / subdir / name}) {
    if (fs::exists(p)) return p.string();
  }
  return "";
}

std::string Timestamp() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", std::localtime(&t));
  return buf;
}

bool HasTrainData(const std::string& dir) {
  for (const char* n : {"train.csv", "train.txt", "train.tsv"}) {
    if (fs::exists(fs::path(dir) / n)) return true;
  }
  return false;
}

// Reads the numeric value of "key": in a flat JSON object written by the
// worker. Returns false when absent or null.
bool JsonNumber(const std::string& json, const std::string& key, double* out) {
  const std::regex re("\"" + key + "\": (-?[0-9.eE+-]+)");
  std::smatch m;
  if (!std::regex_search(json, m, re)) return false;
  *out = std::atof(m[1].str().c_str());
  return true;
}

std::string ReadAll(const fs::path& p) {
  std::string text;
  return ReadFile(p.string(), &text).ok() ? text : std::string();
}

}  // namespace

void AddTrainFlags(FlagSet* f) {
  using K = FlagSet::Kind;
  f->Add("data_location", K::kString, "./data", "folder with train.csv and eval.csv (made if missing)");
  f->Add("steps", K::kInt, "0", "stop at this global step; 0 = one pass over the data");
  f->Add("batch_size", K::kInt, "512", "rows per step per worker");
  f->Add("output_dir", K::kString, "./result", "results go to OUTPUT_DIR/model_DeepFM_<timestamp>/");
  f->Add("checkpoint", K::kString, "", "job folder to save to and resume from (instead of a new one)");
  f->Add("save_steps", K::kInt, "0", "save a checkpoint every N global steps; the job always saves at its end");
  f->Add("keep_checkpoint_max", K::kInt, "5", "keep the newest N checkpoints; 0 keeps all");
  f->Add("seed", K::kInt, "2026", "initialisation seed");
  f->Add("learning_rate", K::kDouble, "0.001", "learning rate");
  f->Add("optimizer", K::kString, "adamasync", "adam, adamasync, adagrad, adagraddecay or sgd");
  f->Add("no_eval", K::kBool, "false", "skip evaluation after training");
  f->Add("timeline", K::kInt, "0", "accepted for train.py compatibility; timelines are not written yet");
  f->Add("bf16", K::kBool, "false", "BF16 training: bf16 on the wire, bf16 storage in FM + DNN, fp32 master weights");
  f->Add("dnn_threads", K::kInt, "1", "threads per DNN GEMM in each worker");
  f->Add("hidden_units", K::kString, "1024,256,32", "DNN hidden layer widths");
  f->Add("embedding_dim", K::kInt, "16", "embedding dimension");
  f->Add("ps_num", K::kInt, "1", "parameter-server shards to start");
  f->Add("worker_num", K::kInt, "1", "workers to start");
  f->Add("ps_threads", K::kInt, "2", "gRPC handler threads per shard");
  f->Add("staleness", K::kInt, "1", "pulls may run this many pushes ahead; 0 = deterministic");
  f->Add("num_epochs", K::kInt, "1", "passes over the training data when --steps does not stop earlier");
  f->Add("data_format", K::kString, "auto", "auto, csv or tsv");
  f->Add("max_bad_fraction", K::kDouble, "0.001", "fail when more than this fraction of lines is bad");
  f->Add("gen_rows", K::kInt, "500000", "training rows of the default data made when --data_location has none");
  f->Add("hang_timeout", K::kInt, "300", "stop the job when no worker prints anything for this many seconds");
}

int RunLocalJob(const FlagSet& flags, const std::string& self) {
  const std::string ps_bin = FindProgram(self, "ps_server", "ps");
  const std::string worker_bin = FindProgram(self, "worker", "worker");
  if (ps_bin.empty() || worker_bin.empty()) {
    fprintf(stderr, "deepfm: cannot find ps_server and worker next to %s (build the whole project)\n",
            self.c_str());
    return 1;
  }
  const int ps_num = static_cast<int>(flags.GetInt("ps_num"));
  const int worker_num = static_cast<int>(flags.GetInt("worker_num"));
  if (ps_num < 1 || worker_num < 1) {
    fprintf(stderr, "deepfm train: --ps_num and --worker_num must be >= 1\n");
    return 2;
  }
  if (flags.GetInt("timeline") > 0) {
    printf("deepfm: --timeline is accepted but timelines are not written yet\n");
  }

  // Default data, made once.
  const std::string data = flags.Get("data_location");
  if (!HasTrainData(data)) {
    DataGenOptions go;
    go.out_dir = data;
    go.train_rows = flags.GetInt("gen_rows");
    go.eval_rows = std::max<int64_t>(1000, go.train_rows / 5);
    go.seed = 2026;
    printf("deepfm: no training data in %s; generating %lld train / %lld eval rows (Criteo schema, "
           "planted model)\n",
           data.c_str(), static_cast<long long>(go.train_rows), static_cast<long long>(go.eval_rows));
    fflush(stdout);
    DataGenReport r;
    Status s = GenerateCriteoData(go, &r);
    if (!s.ok()) {
      fprintf(stderr, "deepfm: generating data: %s\n", s.message().c_str());
      return 1;
    }
    printf("deepfm: wrote %s and %s in %.1f s; oracle eval AUC %.4f (the best any model can do)\n",
           r.train_path.c_str(), r.eval_path.c_str(), r.seconds, r.oracle_auc);
  }

  // Job folder: --checkpoint, else a fresh model_DeepFM_<timestamp>.
  fs::path job = flags.Get("checkpoint");
  if (job.empty()) job = fs::path(flags.Get("output_dir")) / ("model_DeepFM_" + Timestamp());
  std::error_code ec;
  fs::create_directories(job / "logs", ec);
  if (ec) {
    fprintf(stderr, "deepfm: cannot create %s: %s\n", job.c_str(), ec.message().c_str());
    return 1;
  }
  fs::remove(job / "metrics.json", ec);
  printf("deepfm: job folder %s (%d ps, %d workers)\n", job.c_str(), ps_num, worker_num);
  fflush(stdout);

  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Supervisor sup;
  std::vector<int> ps_idx(ps_num, -1), worker_idx;
  std::vector<std::string> ps_addr(ps_num);
  for (int i = 0; i < ps_num; ++i) {
    ChildSpec c;
    c.name = "ps" + std::to_string(i);
    c.argv = {ps_bin,
              "--port=0",
              "--shard_index=" + std::to_string(i),
              "--num_shards=" + std::to_string(ps_num),
              "--threads=" + flags.Get("ps_threads"),
              "--optimizer=" + flags.Get("optimizer"),
              "--learning_rate=" + flags.Get("learning_rate"),
              "--checkpoint_dir=" + job.string()};
    c.log_path = (job / "logs" / (c.name + ".log")).string();
    Status s = sup.Spawn(c, &ps_idx[i]);
    if (!s.ok()) {
      fprintf(stderr, "deepfm: starting %s: %s\n", c.name.c_str(), s.message().c_str());
      return 1;
    }
  }
  // Wait for every shard to print its address.
  const std::regex listening("listening on (\\S+)");
  int ready = 0;
  auto fail = [&](const std::string& who, const std::string& why, int child) {
    fprintf(stderr, "deepfm: %s %s; its last lines:\n%s", who.c_str(), why.c_str(),
            child >= 0 ? sup.Tail(child).c_str() : "");
    sup.StopAll(5000);
    fprintf(stderr, "deepfm: job failed; logs in %s\n", (job / "logs").c_str());
    return 1;
  };
  const int64_t start_deadline = NowNanos() + 120LL * 1000000000;
  while (ready < ps_num) {
    sup.Pump(100, [&](int child, const std::string& line) {
      std::smatch m;
      for (int i = 0; i < ps_num; ++i) {
        if (child == ps_idx[i] && std::regex_search(line, m, listening)) {
          ps_addr[i] = m[1].str();
          ++ready;
        }
      }
    });
    for (auto [child, st] : sup.Reap()) {
      return fail(sup.name(child), "exited during start-up (" + DescribeExit(st) + ")", child);
    }
    if (g_stop_signal) return fail("launcher", "interrupted", -1);
    if (NowNanos() > start_deadline) return fail("launcher", "gave up waiting for the shards to listen", -1);
  }
  std::string hosts;
  for (const std::string& a : ps_addr) hosts += (hosts.empty() ? "" : ",") + a;

  worker_idx.assign(worker_num, -1);
  for (int i = 0; i < worker_num; ++i) {
    ChildSpec c;
    c.name = "worker" + std::to_string(i);
    c.argv = {worker_bin,
              "--ps_hosts=" + hosts,
              "--task_index=" + std::to_string(i),
              "--num_workers=" + std::to_string(worker_num),
              "--data_location=" + data,
              "--data_format=" + flags.Get("data_format"),
              "--steps=" + flags.Get("steps"),
              "--num_epochs=" + flags.Get("num_epochs"),
              "--batch_size=" + flags.Get("batch_size"),
              "--learning_rate=" + flags.Get("learning_rate"),
              "--optimizer=" + flags.Get("optimizer"),
              "--seed=" + flags.Get("seed"),
              "--hidden_units=" + flags.Get("hidden_units"),
              "--embedding_dim=" + flags.Get("embedding_dim"),
              "--staleness=" + flags.Get("staleness"),
              "--max_bad_fraction=" + flags.Get("max_bad_fraction"),
              "--output_dir=" + job.string(),
              "--checkpoint=" + job.string(),
              "--save_steps=" + flags.Get("save_steps"),
              "--keep_checkpoint_max=" + flags.Get("keep_checkpoint_max"),
              "--dnn_threads=" + flags.Get("dnn_threads"),
              std::string("--bf16=") + (flags.GetBool("bf16") ? "true" : "false"),
              std::string("--no_eval=") + (flags.GetBool("no_eval") ? "true" : "false")};
    c.log_path = (job / "logs" / (c.name + ".log")).string();
    Status s = sup.Spawn(c, &worker_idx[i]);
    if (!s.ok()) return fail(c.name, "could not start: " + s.message(), -1);
  }

  // Supervise until every worker has finished.
  const int64_t hang_ns = flags.GetInt("hang_timeout") * 1000000000LL;
  const int64_t train_start = NowNanos();
  int workers_done = 0;
  while (workers_done < worker_num) {
    sup.Pump(200);
    for (auto [child, st] : sup.Reap()) {
      const bool is_worker = std::find(worker_idx.begin(), worker_idx.end(), child) != worker_idx.end();
      if (is_worker && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        ++workers_done;
        continue;
      }
      return fail(sup.name(child), "died (" + DescribeExit(st) + ")", child);
    }
    if (g_stop_signal) {
      fprintf(stderr, "deepfm: signal %d: stopping every process\n", g_stop_signal.load());
      sup.StopAll(5000);
      return 130;
    }
    int64_t last = 0;
    for (int w : worker_idx) {
      if (sup.running(w)) last = std::max(last, sup.last_output_ns(w));
    }
    if (last > 0 && NowNanos() - last > hang_ns) {
      int stuck = -1;
      for (int w : worker_idx) {
        if (sup.running(w)) stuck = w;
      }
      return fail(sup.name(stuck),
                  "printed nothing for " + flags.Get("hang_timeout") + " s (--hang_timeout): hung", stuck);
    }
  }
  const double job_seconds = (NowNanos() - train_start) * 1e-9;
  // Workers are done: stop the shards in order (SIGTERM -> graceful shutdown).
  for (int p : ps_idx) sup.Signal(p, SIGTERM);
  const int64_t stop_deadline = NowNanos() + 30LL * 1000000000;
  int ps_left = ps_num;
  while (ps_left > 0 && NowNanos() < stop_deadline) {
    sup.Pump(100);
    for (auto [child, st] : sup.Reap()) {
      --ps_left;
      if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "deepfm: %s stopped with %s\n", sup.name(child).c_str(), DescribeExit(st).c_str());
      }
    }
  }
  sup.StopAll(1000);

  // Job-level metrics: the chief's evaluation, every worker's rows over the
  // job's training wall time (the slowest worker's training time).
  double rows = 0, train_seconds = 0;
  for (int i = 0; i < worker_num; ++i) {
    const std::string w = ReadAll(job / ("worker" + std::to_string(i) + ".json"));
    double r = 0, t = 0;
    if (JsonNumber(w, "train_rows", &r)) rows += r;
    if (JsonNumber(w, "train_seconds", &t)) train_seconds = std::max(train_seconds, t);
  }
  const std::string chief = ReadAll(job / "metrics.json");
  if (chief.empty()) {
    fprintf(stderr, "deepfm: worker0 wrote no metrics.json\n");
    return 1;
  }
  const double sps = train_seconds > 0 ? rows / train_seconds : 0;
  std::string merged = std::regex_replace(
      chief, std::regex("\"train_samples_per_sec\": [^,}]+"),
      "\"train_samples_per_sec\": " + std::to_string(sps));
  merged = std::regex_replace(merged, std::regex("\\}\\s*$"),
                              ", \"workers\": " + std::to_string(worker_num) +
                                  ", \"ps\": " + std::to_string(ps_num) +
                                  ", \"job_train_rows\": " + std::to_string(static_cast<long long>(rows)) +
                                  ", \"job_seconds\": " + std::to_string(job_seconds) + "}\n");
  std::ofstream(job / "metrics.json") << merged;
  double auc = 0, logloss = 0, acc = 0;
  printf("deepfm: done in %.1f s: %.0f samples/s over %d worker(s)", job_seconds, sps, worker_num);
  if (JsonNumber(merged, "auc", &auc) && JsonNumber(merged, "logloss", &logloss) &&
      JsonNumber(merged, "accuracy", &acc)) {
    printf("; eval AUC %.4f logloss %.4f accuracy %.4f", auc, logloss, acc);
  }
  printf("\ndeepfm: metrics in %s\n", (job / "metrics.json").c_str());
  return 0;
}

}  // namespace deepfm::launcher

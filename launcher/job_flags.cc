#include "launcher/job_flags.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>

#include "common/checkpoint_manifest.h"
#include "ps/ev_policy.h"
#include "ps/optimizer.h"
#include "worker/dnn_kernels.h"

namespace deepfm::launcher {
namespace {

namespace fs = std::filesystem;
using K = FlagSet::Kind;

constexpr unsigned kTasks = kPs | kWorker;
constexpr unsigned kJob = kTrain | kPs | kWorker;
constexpr unsigned kTrainer = kTrain | kWorker;
constexpr unsigned kSecure = kTrain | kPs | kWorker | kStatus | kServe;
constexpr unsigned kScoring = kPredict | kServe;

// What a flag accepts, beside its kind; ValidateFlags checks it for every
// flag the command reads, so a flag's range is written beside its help.
struct Accepts {
  enum class Rule { kAny, kInts, kReals, kChoices } rule = Rule::kAny;
  long long lo = 0, hi = 0;           // kInts: [lo, hi]
  bool (*real_ok)(double) = nullptr;  // kReals: finite and this
  std::vector<std::string> choices;   // kChoices
  const char* what = nullptr;         // the refusal's words; null: said from the rule
};

Accepts IntIn(long long lo, long long hi) {
  return {Accepts::Rule::kInts, lo, hi, nullptr, {}, nullptr};
}
Accepts IntAtLeast(long long lo, const char* what = nullptr) {
  return {Accepts::Rule::kInts, lo, LLONG_MAX, nullptr, {}, what};
}
Accepts RealIf(bool (*ok)(double), const char* what) {
  return {Accepts::Rule::kReals, 0, 0, ok, {}, what};
}
Accepts OneOf(std::vector<std::string> choices) {
  return {Accepts::Rule::kChoices, 0, 0, nullptr, std::move(choices), nullptr};
}

struct FlagDef {
  const char* name;
  K kind;
  const char* default_value;
  unsigned commands;
  const char* help;
  Accepts accepts = {};
};

// The one definition of every flag. Names and meanings follow DeepRec's
// train.py and TensorFlow's where they have one.
const FlagDef kFlags[] = {
    // The job's shape and where this task sits in it.
    {"cluster_spec", K::kString, "", kJob | kStatus,
     "cluster spec file, TF_CONFIG's JSON shape; train: run this spec's tasks (with "
     "--launch_prefix)"},
    {"ps_hosts", K::kString, "", kTasks | kStatus,
     "TF1: comma-separated host:port of every shard, shard 0 first"},
    {"worker_hosts", K::kString, "", kTasks,
     "TF1: comma-separated host:port of every worker, worker 0 (the chief) first"},
    {"job_name", K::kString, "", kTasks,
     "TF1: this task's type, ps or worker (default: the command's)",
     OneOf({"", "ps", "worker", "chief", "master"})},
    {"task_index", K::kInt, "0", kTasks, "TF1: this task's index within its type",
     IntIn(0, 1 << 16)},
    {"ps_num", K::kInt, "1", kTrain, "parameter-server shards of a local job",
     IntIn(1, 4096)},
    {"worker_num", K::kInt, "1", kTrain, "workers of a local job",
     IntIn(1, 4096)},
    {"standalone", K::kBool, "false", kTrain,
     "one process: the trainer with --ps_num shards in-process, no RPC (DeepRec's stand-alone "
     "training); with --staleness=0 it trains bit for bit like a 1-shard, 1-worker job"},
    {"launch_prefix", K::kString, "", kTrain,
     "with --cluster_spec: command that runs a task on its host; {host} becomes the task's host "
     "(e.g. 'ip netns exec {host}'); it must run its arguments as given, environment included"},
    // Security.
    {"auth_token_file", K::kString, "", kSecure,
     "file holding the job's token; every RPC carries it (a local job makes a fresh one)"},
    {"tls_cert", K::kString, "", kSecure,
     "PEM certificate of this task (serves and dials with TLS)"},
    {"tls_key", K::kString, "", kSecure, "PEM private key of --tls_cert"},
    {"tls_ca", K::kString, "", kSecure, "PEM CA the tasks verify each other against (mutual TLS)"},
    {"insecure", K::kBool, "false", kJob | kServe,
     "let a shard, a Predict service or a metrics page listen beyond loopback without a token "
     "(anyone reaching a "
     "shard could train or stop it; a page, read the job's metrics)"},
    {"bind", K::kString, "", kPs | kServe,
     "address a shard listens on; default: its spec host when that is loopback, else 0.0.0.0. "
     "serve: default 127.0.0.1"},
    // Data.
    {"data_location", K::kString, "./data", kTrainer | kPredict,
     "folder with train.csv and eval.csv (or Criteo's train.txt/eval.txt); only the default folder "
     "is filled with generated data when empty. predict: a data file, or a folder (its eval file)"},
    {"data_format", K::kString, "auto", kTrainer, "auto, csv or tsv",
     OneOf({"auto", "csv", "tsv"})},
    {"num_epochs", K::kInt, "1", kTrainer,
     "passes over the training data when --steps does not stop earlier",
     IntIn(1, 1000000)},
    {"batch_size", K::kInt, "512", kTrainer, "rows per step per worker",
     IntIn(1, 1 << 20)},
    {"steps", K::kInt, "0", kTrainer,
     "stop at this global step; 0 = --num_epochs passes over the data",
     IntAtLeast(0, "must be >= 0 (0 trains --num_epochs passes over the data)")},
    {"max_bad_fraction", K::kDouble, "0.001", kTrainer | kPredict,
     "fail when more than this fraction of lines is bad",
     RealIf([](double v) { return v >= 0 && v <= 1; }, "must lie in [0, 1]")},
    {"strict", K::kBool, "false", kTrainer | kPredict, "fail on the first bad input line"},
    {"gen_rows", K::kInt, "500000", kTrain,
     "training rows of the default data, made when the default --data_location has none",
     IntAtLeast(1)},
    // Model.
    {"feature_spec", K::kString, "auto", kTrainer | kGenData | kExport,
     "what a row of data is, which embedding tables it looks up and the network: a preset "
     "(criteo: the model-zoo layout, 40 columns; elm: DeepRec tianchi's Ali ELM data, 39 "
     "columns, with the network that learns best; elm_exact: the same data with train.py's "
     "network exactly) or a spec file in protobuf text format (proto/feature_spec.proto); auto: "
     "the preset whose column count the training file has (39: elm). gen-data: which schema to "
     "write (auto: criteo). export: the job's spec when its folder has no feature_spec.pbtxt"},
    {"hidden_units", K::kString, "1024,256,32", kTrainer,
     "DNN hidden layer widths; when not given, the feature spec's model.hidden_units (if any)"},
    {"embedding_dim", K::kInt, "16", kTrainer,
     "embedding dimension; when given, every table of the feature spec gets it",
     IntIn(1, 1024)},
    {"seed", K::kInt, "2021", kTrainer | kGenData,
     "initialisation seed (embedding rows, dense weights); gen-data: generator seed"},
    {"bf16", K::kBool, "false", kTrainer,
     "BF16 training: bf16 on the wire, bf16 storage in FM + DNN, fp32 master weights"},
    {"op_fusion", K::kBool, "true", kTrainer,
     "fused kernels (bias + ReLU + bf16 rounding in one pass, the ReLU mask with the bias "
     "gradient's sums); false: each op a plain pass of its own, as an unfused graph runs"},
    {"hash_buckets", K::kInt, "0", kTrainer,
     "every table a fixed hash bucket of N rows (key mod N, TensorFlow's "
     "categorical_column_with_hash_bucket) instead of an embedding variable; 0: embedding "
     "variables (the spec's tables.hash_buckets, if any); --tf: 10000",
     IntIn(0, int64_t{1} << 40)},
    {"tf", K::kBool, "false", kJob,
     "stock TensorFlow's baseline, as train.py --tf: plain adam, fp32, no staging "
     "(--smartstaged=false), no fusion (--emb_fusion=false --op_fusion=false) and hash buckets of "
     "10000 rows (--hash_buckets)"},
    {"dnn_threads", K::kInt, "0", kTrainer,
     "threads per DNN GEMM in each worker; 0: the cores this process may use, shared among the "
     "job's trainers on its host",
     IntIn(0, 256)},
    // Optimizer (applied on the shards; the workers check the shards run it).
    {"optimizer", K::kString, "adamasync", kJob, "adam, adamasync, adagrad, adagraddecay or sgd",
     OneOf({"adam", "adamasync", "adagrad", "adagraddecay", "sgd"})},
    {"learning_rate", K::kDouble, "0.001", kJob, "learning rate",
     RealIf([](double v) { return v > 0; }, "must be a positive number")},
    {"beta1", K::kDouble, "0.9", kTrain | kPs, "adam: beta1",
     RealIf([](double v) { return v >= 0 && v < 1; }, "must lie in [0, 1)")},
    {"beta2", K::kDouble, "0.999", kTrain | kPs, "adam: beta2",
     RealIf([](double v) { return v >= 0 && v < 1; }, "must lie in [0, 1)")},
    {"epsilon", K::kDouble, "1e-8", kTrain | kPs, "adam: epsilon",
     RealIf([](double v) { return v >= 0; }, "must be >= 0")},
    {"initial_accumulator", K::kDouble, "0.1", kTrain | kPs,
     "adagrad(decay): initial accumulator and decay floor",
     RealIf([](double v) { return v > 0; }, "must be > 0")},
    {"decay_period", K::kInt, "100000", kTrain | kPs,
     "adagraddecay: global steps between accumulator decays",
     IntAtLeast(1)},
    {"decay_rate", K::kDouble, "0.9", kTrain | kPs, "adagraddecay: accumulator decay factor",
     RealIf([](double v) { return v > 0 && v <= 1; }, "must lie in (0, 1]")},
    // Embedding admission and eviction (ps/ev_policy.h; DeepRec's EmbeddingVariable options).
    {"ev_filter_freq", K::kInt, "0", kTrain | kPs,
     "admission: a key gets an embedding row at its N-th push; until then it reads its initial "
     "value and its gradient is dropped (DeepRec's filter_freq); 0 or 1 = every key",
     IntIn(0, 65535)},
    {"ev_filter", K::kString, "counter", kTrain | kPs,
     "admission filter: counter (exact count per key, DeepRec's CounterFilter) or bloom "
     "(counting Bloom filter, DeepRec's CBFFilter)"},
    {"ev_bloom_fp_rate", K::kDouble, "0.01", kTrain | kPs,
     "bloom filter: false-positive probability (k = ceil|log2 p| hashes)",
     RealIf([](double v) { return v > 0 && v < 1; }, "must lie in (0, 1)")},
    {"ev_bloom_max_elements", K::kInt, "1048576", kTrain | kPs,
     "bloom filter: expected distinct keys per table per shard (m = ceil(|ln p| n / ln(2)^2) "
     "16-bit counters)",
     IntAtLeast(1)},
    {"ev_steps_to_live", K::kInt, "0", kTrain | kPs | kExport,
     "evict rows not pushed for more than N global steps (DeepRec's GlobalStepEvict); 0 = never. "
     "export: the job's value (default: its job.json's), rows dead by it are left out",
     IntIn(0, 0x7fffffff)},
    {"ev_l2_threshold", K::kDouble, "0", kTrain | kPs,
     "evict rows whose half squared L2 norm falls below this at a sweep (DeepRec's "
     "L2WeightEvict); 0 = never",
     RealIf([](double v) { return v >= 0 && std::isfinite(v); }, "must be >= 0")},
    {"ev_evict_interval_steps", K::kInt, "1000", kTrain | kPs,
     "global steps between the shards' background eviction sweeps (they also run at each save)",
     IntAtLeast(1)},
    {"ps_memory_budget_mb", K::kInt, "0", kTrain | kPs,
     "most MiB each shard's embedding tables may hold; beyond it the least recently (then least "
     "frequently) pushed rows are evicted; 0 = unbounded",
     IntIn(0, 1 << 24)},
    // Training, checkpoints, results.
    {"smartstaged", K::kBool, "true", kTrainer,
     "read, de-duplicate and pull the next batch while the step computes (DeepRec's SmartStage); "
     "false: each step reads and pulls only after the previous step's push"},
    {"emb_fusion", K::kBool, "true", kTrainer,
     "one pull per shard for every table of a step (DeepRec's embedding fusion); false: one per "
     "table (and one for the dense variables). Pushes stay one per shard: a step's update is "
     "applied, logged and checkpointed whole"},
    {"protocol", K::kString, "grpc", kJob,
     "RPC transport: grpc (train.py's default); DeepRec's grpc++ and star_server are not built"},
    {"staleness", K::kInt, "1", kTrainer,
     "pulls may run this many pushes ahead; 0 = synchronous and deterministic",
     IntIn(0, 1000)},
    {"checkpoint", K::kString, "", kJob | kExport,
     "job folder (on storage every task shares): checkpoints, reports; a job started on one "
     "holding a "
     "checkpoint resumes from it. export: the job folder to export from"},
    {"output_dir", K::kString, "./result", kJob,
     "train: parent of a new job folder model_DeepFM_<timestamp> when --checkpoint is not given; "
     "ps/worker: the job folder when --checkpoint is not given"},
    {"restore_checkpoint", K::kString, "", kTrain | kPs | kExport,
     "resume from this checkpoint folder (ckpt-<step>) of the job folder instead of the latest, "
     "e.g. when the latest is damaged; empty = the latest. export: the checkpoint to export"},
    {"fall_back_to_good_checkpoint", K::kBool, "false", kPs,
     "when the latest checkpoint is damaged, restore the newest one that verifies instead of "
     "refusing to start (the launcher sets it when it restarts a job)"},
    {"save_steps", K::kInt, "0", kTrainer,
     "save a checkpoint every N global steps; the job always saves at its end",
     IntAtLeast(0)},
    {"keep_checkpoint_max", K::kInt, "5", kTrainer,
     "keep the newest N checkpoints (and the saves a kept delta builds on); 0 keeps all",
     IntAtLeast(0, "must be >= 0 (0 keeps every checkpoint)")},
    {"incremental_save_steps", K::kInt, "0", kJob,
     "between full saves, every N global steps save a delta: only the rows changed since the "
     "previous save (DeepRec's incremental checkpoints); 0: none",
     IntAtLeast(0, "must be >= 0 (0 saves no deltas)")},
    {"max_restarts", K::kInt, "3", kTrain,
     "restart crashed tasks this many times: a trainer alone while the shards live, else "
     "every task from the newest good checkpoint",
     IntIn(0, 1000)},
    {"reset_data_position", K::kBool, "false", kTrainer,
     "resuming a checkpoint saved with another --batch_size, trainer count or data files: "
     "start every trainer at the beginning of the data instead of refusing (positions saved "
     "under the job's own layout are always kept)"},
    {"no_eval", K::kBool, "false", kTrainer, "skip evaluation after training"},
    {"timeline", K::kInt, "0", kTrainer,
     "every N-th step of each trainer, write timeline-<global step>.json in the job folder: "
     "Chrome trace events of the trainer's stages and the shards' handling (open in "
     "ui.perfetto.dev or chrome://tracing); 0: none",
     IntAtLeast(0)},
    {"log_every", K::kInt, "100", kTrainer, "log every N steps",
     IntAtLeast(0)},
    {"metrics_token_file", K::kString, "", kJob,
     "file holding the password a scrape of the metrics page must send (basic auth); default: "
     "the job's token. Give a separate one where scrapes cross a network in plain HTTP (a job "
     "without --tls_cert), so the job's token never does"},
    {"metrics_port", K::kInt, "0", kJob | kServe,
     "serve Prometheus metrics at http://<task host>:PORT/metrics (https with --tls_cert), "
     "guarded by the job's token "
     "(basic auth password); 0: off. A job the launcher runs gives shard i PORT+i and trainer j "
     "PORT+ps_num+j",
     IntIn(0, 65535)},
    // Processes and RPC.
    {"ps_threads", K::kInt, "2", kTrain | kPs, "gRPC handler threads per shard",
     IntIn(1, 1024)},
    {"rpc_deadline_ms", K::kInt, "60000", kTrainer | kStatus, "deadline of every RPC to a shard",
     IntIn(100, 24 * 3600 * 1000)},
    {"max_message_mb", K::kInt, "512", kJob | kServe, "largest gRPC message sent or accepted, MiB",
     IntIn(4, 2047)},
    {"dense_slice_kb", K::kInt, "64", kJob,
     "dense variables above this many KiB are split in contiguous row slices over every shard "
     "(TF's partitioned variables); 0 keeps each whole on one shard. Shards and trainers must "
     "agree; checkpoints restore under any value",
     IntIn(0, 1 << 20)},
    {"hang_timeout", K::kInt, "300", kTrainer,
     "a trainer that sends no heartbeat, or makes no progress, for this many seconds is hung: the "
     "job stops",
     IntIn(1, 7 * 24 * 3600)},
    {"dry_run", K::kBool, "false", kTasks,
     "resolve this task's cluster spec and check its flags, print the spec (TF_CONFIG's JSON "
     "shape) and exit without serving or training: how deploy files are checked"},
    {"shutdown_ps", K::kBool, "false", kWorker,
     "ask every shard to stop when this worker is done (by-hand runs)"},
    // gen-data.
    {"rows", K::kInt, "500000", kGenData, "training rows",
     IntAtLeast(1)},
    {"eval_rows", K::kInt, "-1", kGenData, "evaluation rows; -1 = rows / 5",
     IntAtLeast(-1, "must be >= 0, or -1 for rows / 5")},
    {"out", K::kString, "", kGenData | kExport | kPredict,
     "gen-data: the data folder (default ./data); export: the export root, each export a "
     "numbered version folder in it (default <--checkpoint>/export); predict: the scores file, one "
     "probability per row (default: none, metrics only)"},
    {"report_file", K::kString, "", kReport,
     "where to write the page; default: report.html in the job folder (one job) or in the "
     "current folder (several)"},
    {"format", K::kString, "csv", kGenData, "csv (train.csv) or tsv (train.txt, Criteo's layout)",
     OneOf({"csv", "tsv"})},
    // Serving: export, predict, serve.
    {"export", K::kBool, "false", kTrain,
     "at the job's end, export its last checkpoint to <job folder>/export (deepfm export), so the "
     "run leaves a servable model"},
    {"min_frequency", K::kInt, "0", kTrain | kExport,
     "export: leave out rows pushed fewer than N times (they read as unseen keys: their initial "
     "row); 0 keeps every row",
     IntAtLeast(0)},
    {"export_values", K::kString, "fp32", kTrain | kExport,
     "export: store rows as fp32 or bf16 (half the bytes, values rounded to nearest even)",
     OneOf({"fp32", "bf16"})},
    {"model", K::kString, "", kScoring,
     "the export to score with: an export root (its newest version), a version folder or a "
     "model.dfm"},
    {"forward", K::kString, "auto", kScoring,
     "the forward's precision: auto (as the job trained), fp32 or bf16",
     OneOf({"auto", "fp32", "bf16"})},
    {"threads", K::kInt, "0", kScoring,
     "scoring threads; 0: predict all but one of the cores this process may use (that one "
     "parses the data), serve half of them (the rest parse requests)",
     IntAtLeast(0)},
    {"port", K::kInt, "8500", kServe, "the Predict service's gRPC port",
     IntIn(0, 65535)},
    {"batch_wait_us", K::kInt, "200", kServe,
     "a forward pass waits up to this long after its first request for more to batch with it; 0: "
     "only those already queued",
     IntIn(0, 1000000)},
    {"max_batch_rows", K::kInt, "1024", kServe, "most rows one forward pass batches",
     IntIn(1, 65536)},
    {"watch", K::kBool, "false", kServe,
     "poll --model (an export root) for a newer version and swap to it without dropping a "
     "request; a damaged one is refused and the old keeps serving"},
    {"watch_interval_ms", K::kInt, "1000", kServe, "how often --watch looks",
     IntIn(10, 3600000)},
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

Status Bad(const std::string& flag, const std::string& value, const std::string& accepts) {
  return InvalidArgument("--" + flag + "=" + value + ": " + accepts);
}

// Checks one flag only when `command` reads it.
class Checker {
 public:
  Checker(const FlagSet& f, Command c) : f_(f), c_(c) {}
  bool Reads(const char* name) const {
    for (const FlagDef& d : kFlags) {
      if (name == std::string(d.name)) return (d.commands & c_) != 0 && f_.Has(name);
    }
    return false;
  }
  // The flag's own rule (its FlagDef's accepts).
  void Accepted(const FlagDef& d) {
    if (!s_.ok() || !Reads(d.name)) return;
    const Accepts& a = d.accepts;
    switch (a.rule) {
      case Accepts::Rule::kAny:
        return;
      case Accepts::Rule::kInts: {
        const long long v = f_.GetInt(d.name);
        if (v >= a.lo && v <= a.hi) return;
        s_ = Bad(d.name, f_.Get(d.name),
                 a.what                ? a.what
                 : a.hi == LLONG_MAX ? "must be >= " + std::to_string(a.lo)
                                     : "must lie in [" + std::to_string(a.lo) + ", " +
                                           std::to_string(a.hi) + "]");
        return;
      }
      case Accepts::Rule::kReals: {
        const double v = f_.GetDouble(d.name);
        if (!std::isfinite(v) || !a.real_ok(v)) s_ = Bad(d.name, f_.Get(d.name), a.what);
        return;
      }
      case Accepts::Rule::kChoices: {
        for (const std::string& v : a.choices) {
          if (f_.Get(d.name) == v) return;
        }
        std::string list;
        for (const std::string& v : a.choices) list += (list.empty() ? "" : ", ") + v;
        s_ = Bad(d.name, f_.Get(d.name), "must be one of " + list);
        return;
      }
    }
  }
  void Set(const Status& s) {
    if (s_.ok()) s_ = s;
  }
  const Status& status() const { return s_; }

 private:
  const FlagSet& f_;
  Command c_;
  Status s_;
};

Status ParseHiddenUnits(const std::string& text, std::vector<int>* out) {
  out->clear();
  for (const std::string& u : Split(text, ',')) {
    char* end = nullptr;
    const long v = std::strtol(u.c_str(), &end, 10);
    if (u.empty() || *end != '\0' || v <= 0 || v > 65536) {
      return Bad("hidden_units", text,
                 "'" + u +
                     "' is not a layer width; give comma-separated widths in [1, 65536], e.g. "
                     "1024,256,32");
    }
    out->push_back(static_cast<int>(v));
  }
  return Status::Ok();
}

ReaderOptions::Format DataFormat(const FlagSet& f) {
  const std::string v = f.Get("data_format");
  return v == "csv" ? ReaderOptions::kCsv : v == "tsv" ? ReaderOptions::kTsv : ReaderOptions::kAuto;
}

// --tf trains with plain adam whatever --optimizer's default says.
std::string OptimizerName(const FlagSet& f) {
  return f.Has("tf") && f.GetBool("tf") ? "adam" : f.Get("optimizer");
}

Status OptimizerFromFlags(const FlagSet& f, ps::OptimizerOptions* o) {
  Status s = ps::ParseOptimizerType(OptimizerName(f), &o->type);
  if (!s.ok()) return Bad("optimizer", f.Get("optimizer"), s.message());
  o->learning_rate = static_cast<float>(f.GetDouble("learning_rate"));
  return Status::Ok();
}

// The job folder a task writes to: --checkpoint, else --output_dir.
std::string TaskJobFolder(const FlagSet& f) {
  return f.Get("checkpoint").empty() ? f.Get("output_dir") : f.Get("checkpoint");
}

}  // namespace

const char* CommandName(Command c) {
  switch (c) {
    case kTrain:
      return "train";
    case kPs:
      return "ps";
    case kWorker:
      return "worker";
    case kGenData:
      return "gen-data";
    case kStatus:
      return "status";
    case kReport:
      return "report";
    case kExport:
      return "export";
    case kPredict:
      return "predict";
    case kServe:
      return "serve";
  }
  return "?";
}

FlagSet FlagsOf(unsigned commands, const std::string& name) {
  FlagSet f(name);
  for (const FlagDef& d : kFlags) {
    if (d.commands & commands) f.Add(d.name, d.kind, d.default_value, d.help);
  }
  return f;
}

bool IsDefaultDataLocation(const FlagSet& flags) { return !flags.WasSet("data_location"); }

Status FindDataFiles(const std::string& folder, bool need_eval, std::string* train,
                     std::string* eval) {
  auto find = [&](const std::string& split, std::string* out) {
    for (const char* ext : {".csv", ".txt", ".tsv"}) {
      const fs::path p = fs::path(folder) / (split + ext);
      if (fs::exists(p)) {
        *out = p.string();
        return true;
      }
    }
    return false;
  };
  if (!find("train", train)) {
    return NotFound("--data_location=" + folder +
                    " holds no training data (looked for train.csv, train.txt, "
                    "train.tsv); give the folder that has it, or leave --data_location unset for "
                    "generated data");
  }
  if (!find("eval", eval) && need_eval) {
    return NotFound("--data_location=" + folder +
                    " holds no evaluation data (looked for eval.csv, eval.txt, "
                    "eval.tsv); add it, or pass --no_eval");
  }
  return Status::Ok();
}

Status ValidateFlags(const FlagSet& f, Command c) {
  Checker k(f, c);
  for (const FlagDef& d : kFlags) k.Accepted(d);
  if (k.Reads("protocol") && f.Get("protocol") != "grpc") {
    k.Set(Bad("protocol", f.Get("protocol"),
              f.Get("protocol") == "grpc++" || f.Get("protocol") == "star_server"
                  ? "DeepRec's " + f.Get("protocol") +
                        " transport is not built here; the supported protocol is grpc"
                  : "the supported protocol is grpc"));
  }
  if (k.Reads("tf") && f.GetBool("tf")) {
    // --tf is a fixed baseline: a flag that asks for something else is a
    // contradiction, not an override.
    auto conflict = [&](const char* flag, const std::string& tf_value) {
      if (k.Reads(flag) && f.WasSet(flag) && f.Get(flag) != tf_value) {
        k.Set(InvalidArgument("--tf trains stock TensorFlow's baseline with --" + std::string(flag) +
                              "=" + tf_value + "; drop --" + flag + "=" + f.Get(flag) +
                              " or drop --tf"));
      }
    };
    conflict("optimizer", "adam");
    conflict("bf16", "false");
    conflict("smartstaged", "false");
    conflict("emb_fusion", "false");
    conflict("op_fusion", "false");
  }
  if (c == kTrain && k.status().ok() && !f.GetBool("export")) {
    for (const char* flag : {"min_frequency", "export_values"}) {
      if (f.WasSet(flag)) {
        k.Set(InvalidArgument(std::string("--") + flag +
                              " shapes the export at the job's end: it needs "
                              "--export (or use it with deepfm export)"));
      }
    }
  }
  if ((c == kExport || c == kPredict || c == kServe) && k.status().ok()) {
    const char* need = c == kExport ? "checkpoint" : "model";
    if (f.Get(need).empty()) {
      k.Set(InvalidArgument(std::string("--") + need + " is required: " +
                            (c == kExport ? "the job folder to export from"
                                          : "the export to score with (deepfm export's --out)")));
    }
  }
  if (k.Reads("hidden_units")) {
    std::vector<int> units;
    k.Set(ParseHiddenUnits(f.Get("hidden_units"), &units));
  }
  if (k.Reads("launch_prefix") && !f.Get("launch_prefix").empty() &&
      f.Get("cluster_spec").empty()) {
    k.Set(InvalidArgument(
        "--launch_prefix needs --cluster_spec: it says how to reach the hosts of that spec"));
  }
  if (k.Reads("cluster_spec") && c == kTrain && !f.Get("cluster_spec").empty() &&
      (f.WasSet("ps_num") || f.WasSet("worker_num"))) {
    k.Set(
        InvalidArgument("--ps_num and --worker_num shape a local job; with --cluster_spec the spec "
                        "lists the tasks"));
  }
  if (k.Reads("standalone") && f.GetBool("standalone")) {
    if (f.GetInt("worker_num") != 1) {
      k.Set(InvalidArgument("--standalone runs one trainer; --worker_num=" +
                            f.Get("worker_num") + " needs a job of processes (drop --standalone)"));
    } else if (!f.Get("cluster_spec").empty()) {
      k.Set(InvalidArgument(
          "--standalone runs in this process; --cluster_spec describes tasks on hosts"));
    }
  }
  if (k.Reads("restore_checkpoint") && !f.Get("restore_checkpoint").empty()) {
    int64_t step = 0;
    if (!ParseCheckpointFolderName(f.Get("restore_checkpoint"), &step)) {
      k.Set(Bad("restore_checkpoint", f.Get("restore_checkpoint"),
                "must name a checkpoint folder of the job folder, ckpt-<step> (e.g. ckpt-2000)"));
    } else if (c == kTrain && f.Get("checkpoint").empty()) {
      k.Set(InvalidArgument("--restore_checkpoint=" + f.Get("restore_checkpoint") +
                            " needs --checkpoint, the job folder that holds it (without it the "
                            "job starts in a new, empty folder)"));
    } else if (c == kTrain && !fs::is_directory(fs::path(f.Get("checkpoint")) /
                                                f.Get("restore_checkpoint"))) {
      k.Set(NotFound("--restore_checkpoint=" + f.Get("restore_checkpoint") + ": there is no " +
                     (fs::path(f.Get("checkpoint")) / f.Get("restore_checkpoint")).string() +
                     "; give one of the ckpt-<step> folders of --checkpoint"));
    }
  }
  // An explicit data folder must hold data; only the default one is filled.
  // A dry run checks a task's flags away from its host, where the data is.
  const bool dry_run = k.Reads("dry_run") && f.GetBool("dry_run");
  if (k.status().ok() && !dry_run &&
      (c == kWorker || (c == kTrain && !IsDefaultDataLocation(f)))) {
    std::string train, eval;
    k.Set(FindDataFiles(f.Get("data_location"), !f.GetBool("no_eval"), &train, &eval));
    // The spec resolves against the data, before any process starts.
    FeatureSpecPtr spec;
    if (k.status().ok()) k.Set(LoadJobFeatureSpec(f, train, &spec));
  }
  if (k.status().ok() && k.Reads("feature_spec") && f.Get("feature_spec") != "auto") {
    FeatureSpecPtr spec;
    if (c == kGenData) {
      if (f.Get("feature_spec") != "criteo" && f.Get("feature_spec") != "elm" &&
          f.Get("feature_spec") != "elm_exact") {
        k.Set(Bad("feature_spec", f.Get("feature_spec"),
                  "gen-data writes a preset's schema: criteo, elm or elm_exact"));
      }
    } else {
      k.Set(FeatureSpec::Load(f.Get("feature_spec"), &spec));
    }
  }
  return k.status();
}

Status ResolveTaskSpec(const FlagSet& f, const std::string& tf_config, unsigned command,
                       ClusterSpec* spec, std::string* origin) {
  ClusterSources src;
  src.spec_file = f.Get("cluster_spec");
  src.tf_config = tf_config;
  src.ps_hosts = f.Get("ps_hosts");
  src.worker_hosts = f.Get("worker_hosts");
  src.job_name = f.Get("job_name");
  if (src.job_name.empty() && command == kPs) src.job_name = "ps";
  if (src.job_name.empty() && command == kWorker) src.job_name = "worker";
  src.task_index = static_cast<int>(f.GetInt("task_index"));
  Status s = ResolveClusterSpec(src, /*need_task=*/true, spec, origin);
  if (!s.ok()) return s;
  const bool is_ps = spec->task_type == "ps";
  if ((command == kPs && !is_ps) || (command == kWorker && is_ps)) {
    return InvalidArgument(
        *origin + " says this task is " + spec->task_name() + ", but the command is 'deepfm " +
        CommandName(static_cast<Command>(command)) + "'; run 'deepfm " + (is_ps ? "ps" : "worker") +
        "' (or 'deepfm task', which follows the spec)");
  }
  return Status::Ok();
}

Status EvPolicyFromFlags(const FlagSet& f, ps::EvPolicy* ev) {
  bool ok = false;
  ev->filter = ps::ParseFilterKind(f.Get("ev_filter"), &ok);
  if (!ok) return InvalidArgument("--ev_filter=" + f.Get("ev_filter") + ": use counter or bloom");
  ev->filter_freq = static_cast<uint32_t>(f.GetInt("ev_filter_freq"));
  ev->bloom_fp_rate = f.GetDouble("ev_bloom_fp_rate");
  ev->bloom_max_elements = static_cast<uint64_t>(f.GetInt("ev_bloom_max_elements"));
  ev->steps_to_live = f.GetInt("ev_steps_to_live");
  ev->l2_threshold = static_cast<float>(f.GetDouble("ev_l2_threshold"));
  ev->evict_interval_steps = f.GetInt("ev_evict_interval_steps");
  return ps::ValidateEvPolicy(*ev);
}

Status LoadSecurity(const FlagSet& f, rpc::Security* security) {
  rpc::SecurityOptions o;
  o.auth_token_file = f.Get("auth_token_file");
  o.tls_cert = f.Get("tls_cert");
  o.tls_key = f.Get("tls_key");
  o.tls_ca = f.Get("tls_ca");
  return rpc::Security::Load(o, security);
}

namespace {

// The metrics page's credential: --metrics_token_file's token, else the job's.
Status MetricsSecurity(const FlagSet& f, const rpc::Security& job, rpc::Security* out) {
  if (f.Get("metrics_token_file").empty()) {
    *out = rpc::Security::WithToken(job.token());
    return Status::Ok();
  }
  rpc::SecurityOptions o;
  o.auth_token_file = f.Get("metrics_token_file");
  Status s = rpc::Security::Load(o, out);
  if (!s.ok()) return Status(s.code(), "--metrics_token_file: " + s.message());
  return s;
}

}  // namespace

Status MakePsTask(const FlagSet& f, const ClusterSpec& spec, const rpc::Security& security,
                  ps::PsTaskOptions* out) {
  *out = ps::PsTaskOptions();
  out->name = spec.task_name();
  ps::ShardOptions& so = out->shard;
  so.shard_index = static_cast<uint32_t>(spec.task_index);
  so.num_shards = static_cast<uint32_t>(spec.ps.size());
  so.num_trainers = static_cast<uint32_t>(spec.num_trainers());
  so.dense_slice_bytes = f.GetInt("dense_slice_kb") << 10;
  Status s = OptimizerFromFlags(f, &so.optimizer);
  if (!s.ok()) return s;
  s = EvPolicyFromFlags(f, &so.ev);
  if (!s.ok()) return s;
  so.memory_budget_bytes = f.GetInt("ps_memory_budget_mb") << 20;
  so.track_evictions = f.GetInt("incremental_save_steps") > 0;
  so.optimizer.beta1 = static_cast<float>(f.GetDouble("beta1"));
  so.optimizer.beta2 = static_cast<float>(f.GetDouble("beta2"));
  so.optimizer.epsilon = static_cast<float>(f.GetDouble("epsilon"));
  so.optimizer.initial_accumulator = static_cast<float>(f.GetDouble("initial_accumulator"));
  so.optimizer.decay_period = f.GetInt("decay_period");
  so.optimizer.decay_rate = static_cast<float>(f.GetDouble("decay_rate"));
  std::string host;
  int port = 0;
  s = SplitHostPort(spec.task_address(), &host, &port);
  if (!s.ok()) return s;
  ps::ServerOptions& server = out->server;
  server.bind = f.Get("bind").empty() ? (IsLoopbackHost(host) ? host : "0.0.0.0") : f.Get("bind");
  server.port = port;
  server.threads = static_cast<int>(f.GetInt("ps_threads"));
  server.max_message_bytes = static_cast<int>(f.GetInt("max_message_mb") << 20);
  server.security = security;
  server.checkpoint_root = TaskJobFolder(f);
  out->metrics_port = static_cast<int>(f.GetInt("metrics_port"));
  out->insecure = f.GetBool("insecure");
  s = MetricsSecurity(f, security, &out->metrics_security);
  if (!s.ok()) return s;
  out->peers = spec.ps;
  out->restore_checkpoint = f.Get("restore_checkpoint");
  out->fall_back_to_good_checkpoint = f.GetBool("fall_back_to_good_checkpoint");
  // Beyond loopback, anyone who can reach the port could read the model,
  // train it or stop it: that needs the job's token, or an explicit waiver.
  if (!IsLoopbackHost(server.bind) && !security.has_token() && !f.GetBool("insecure")) {
    return FailedPrecondition(
        out->name + " would listen on " + server.bind + ":" + std::to_string(port) +
        " without a token: give --auth_token_file (deploy/tls/make_certs.sh makes one), "
        "or --insecure to accept that anyone reaching the port controls the shard");
  }
  return Status::Ok();
}

namespace {

// The GEMM threads of a trainer left to choose: the cores this process may
// use, split evenly among the job's trainers on the same host. Shards on
// that host are not subtracted: their load comes and goes, and the GEMM's
// blocks are scheduled dynamically (dnn::ParallelGemm), so a core busy
// with a shard's request delays a step by at most one block.
int AutoDnnThreads(const ClusterSpec& spec) {
  std::string here, host;
  int port = 0;
  if (!SplitHostPort(spec.task_address(), &here, &port).ok()) return 1;
  int trainers_here = 0;
  for (const std::string& t : spec.trainers()) {
    if (SplitHostPort(t, &host, &port).ok() && host == here) ++trainers_here;
  }
  return std::max(1, dnn::DefaultThreads() / std::max(1, trainers_here));
}

}  // namespace

Status LoadJobFeatureSpec(const FlagSet& f, const std::string& train_file, FeatureSpecPtr* out) {
  FeatureSpecPtr resolved;
  Status s = ResolveFeatureSpec(f.Get("feature_spec"), train_file, &resolved);
  const bool tf = f.Has("tf") && f.GetBool("tf");
  const bool buckets = f.Has("hash_buckets") && (f.WasSet("hash_buckets") || tf);
  if (!s.ok() || (!f.WasSet("embedding_dim") && !buckets)) {
    *out = std::move(resolved);
    return s;
  }
  // --embedding_dim resizes every table (the FM needs one dimension);
  // --hash_buckets (or --tf) makes every table a fixed bucket.
  spec::FeatureSpec proto = resolved->proto();
  const uint64_t n = f.WasSet("hash_buckets") ? static_cast<uint64_t>(f.GetInt("hash_buckets")) : 10000;
  for (spec::Table& t : *proto.mutable_tables()) {
    if (f.WasSet("embedding_dim")) t.set_dim(static_cast<uint32_t>(f.GetInt("embedding_dim")));
    if (buckets) t.set_hash_buckets(n);
  }
  return FeatureSpec::FromProto(proto, "--feature_spec=" + f.Get("feature_spec") +
                                           " with --embedding_dim/--hash_buckets", out);
}

Status MakeWorkerTask(const FlagSet& f, const ClusterSpec& spec, const rpc::Security& security,
                      WorkerTaskOptions* out) {
  *out = WorkerTaskOptions();
  out->name = spec.task_name();
  TrainerOptions& to = out->trainer;
  const bool tf = f.GetBool("tf");
  to.model.bf16 = f.GetBool("bf16") && !tf;
  to.model.op_fusion = f.GetBool("op_fusion") && !tf;
  to.smartstaged = f.GetBool("smartstaged") && !tf;
  to.emb_fusion = f.GetBool("emb_fusion") && !tf;
  to.model.dnn_threads = static_cast<int>(f.GetInt("dnn_threads"));
  if (to.model.dnn_threads == 0) to.model.dnn_threads = AutoDnnThreads(spec);
  std::string train, eval;
  Status s = FindDataFiles(f.Get("data_location"), !f.GetBool("no_eval"), &train, &eval);
  if (!s.ok()) return s;
  s = LoadJobFeatureSpec(f, train, &to.spec);
  if (!s.ok()) return s;
  // The spec's hidden layers, unless --hidden_units names others.
  if (!f.WasSet("hidden_units") && !to.spec->hidden_units().empty()) {
    to.model.hidden_units = to.spec->hidden_units();
  } else {
    s = ParseHiddenUnits(f.Get("hidden_units"), &to.model.hidden_units);
    if (!s.ok()) return s;
  }
  out->eval_data.spec = to.spec;
  const ReaderOptions::Format format = DataFormat(f);
  to.train_data.files = {train};
  to.train_data.format = format;
  to.train_data.batch_size = static_cast<int>(f.GetInt("batch_size"));
  to.train_data.part_index = spec.trainer_index();
  to.train_data.num_parts = spec.num_trainers();
  to.train_data.num_epochs = static_cast<int>(f.GetInt("num_epochs"));
  to.train_data.max_bad_fraction = f.GetDouble("max_bad_fraction");
  to.train_data.strict = f.GetBool("strict");
  to.steps = f.GetInt("steps");
  to.staleness = static_cast<int>(f.GetInt("staleness"));
  to.seed = static_cast<uint64_t>(f.GetInt("seed"));
  to.log_every = static_cast<int>(f.GetInt("log_every"));
  to.timeline_every = static_cast<int>(f.GetInt("timeline"));
  to.timeline_dir = TaskJobFolder(f);
  to.log_prefix = spec.task_name();
  to.is_chief = spec.is_chief();
  to.checkpoint_dir = TaskJobFolder(f);
  to.save_steps = f.GetInt("save_steps");
  to.incremental_save_steps = f.GetInt("incremental_save_steps");
  to.keep_checkpoint_max = static_cast<int>(f.GetInt("keep_checkpoint_max"));
  to.optimizer_name = OptimizerName(f);
  to.num_workers = spec.num_trainers();
  to.task_index = spec.trainer_index();
  to.hang_timeout_s = static_cast<double>(f.GetInt("hang_timeout"));
  to.reset_data_position = f.GetBool("reset_data_position");
  PsClientOptions& co = out->client;
  co.hosts = spec.ps;
  co.task_index = static_cast<uint32_t>(spec.trainer_index());
  co.rpc_deadline_ms = static_cast<int>(f.GetInt("rpc_deadline_ms"));
  co.max_message_bytes = static_cast<int>(f.GetInt("max_message_mb") << 20);
  co.wire_dtype = to.model.bf16 ? ps::BF16 : ps::F32;
  co.dense_slice_bytes = f.GetInt("dense_slice_kb") << 10;
  co.security = security;
  out->optimizer = OptimizerName(f);
  out->learning_rate = f.GetDouble("learning_rate");
  out->evaluate = to.is_chief && !f.GetBool("no_eval");
  out->eval_data.files = {eval};
  out->eval_data.format = format;
  out->eval_data.batch_size = kEvalBatchSize;
  out->eval_data.max_bad_fraction = f.GetDouble("max_bad_fraction");
  out->eval_data.strict = f.GetBool("strict");
  out->output_dir = TaskJobFolder(f);
  out->shutdown_ps = f.GetBool("shutdown_ps");
  out->metrics_port = static_cast<int>(f.GetInt("metrics_port"));
  out->insecure = f.GetBool("insecure");
  s = MetricsSecurity(f, security, &out->metrics_security);
  if (!s.ok()) return s;
  {
    std::string host;
    int port = 0;
    // A trainer serves nothing else; its page listens where a shard on the
    // same host would.
    if (SplitHostPort(spec.task_address(), &host, &port).ok()) {
      out->metrics_bind = IsLoopbackHost(host) ? host : "0.0.0.0";
    }
  }
  return Status::Ok();
}

std::vector<std::string> ForwardedFlags(const FlagSet& from, Command to,
                                        const std::vector<std::string>& except) {
  std::vector<std::string> out;
  for (const FlagDef& d : kFlags) {
    if (!(d.commands & to) || !from.Has(d.name) || !from.WasSet(d.name)) continue;
    bool skip = false;
    for (const std::string& e : except) skip |= e == d.name;
    if (!skip) out.push_back(std::string("--") + d.name + "=" + from.Get(d.name));
  }
  return out;
}

serving::ExportOptions ExportOptionsFromFlags(const FlagSet& f) {
  serving::ExportOptions o;
  o.checkpoint_dir = f.Has("checkpoint") ? f.Get("checkpoint") : "";
  o.restore_checkpoint = f.Has("restore_checkpoint") ? f.Get("restore_checkpoint") : "";
  o.out_dir = f.Has("out") ? f.Get("out") : "";
  if (o.out_dir.empty() && !o.checkpoint_dir.empty()) {
    o.out_dir = (fs::path(o.checkpoint_dir) / "export").string();
  }
  o.min_frequency = static_cast<uint32_t>(f.GetInt("min_frequency"));
  o.bf16_values = f.Get("export_values") == "bf16";
  if (f.Has("feature_spec")) o.feature_spec = f.Get("feature_spec");
  if (f.WasSet("ev_steps_to_live")) o.steps_to_live = f.GetInt("ev_steps_to_live");
  return o;
}

namespace {

serving::ModelOptions ModelOptionsFromFlags(const FlagSet& f) {
  serving::ModelOptions m;
  const std::string forward = f.Get("forward");
  m.bf16 = forward == "auto" ? -1 : forward == "bf16" ? 1 : 0;
  return m;
}

// The cores this process may use (its CPU affinity, a container's or
// Slurm's set).
int CoresForScoring() { return std::max(1, dnn::DefaultThreads()); }

}  // namespace

Status MakePredictOptions(const FlagSet& f, serving::PredictOptions* o) {
  *o = serving::PredictOptions();
  o->model = f.Get("model");
  o->out = f.Get("out");
  o->threads = f.GetInt("threads") > 0 ? static_cast<int>(f.GetInt("threads"))
                                        : std::max(1, CoresForScoring() - 1);
  o->batch_size = kEvalBatchSize;
  o->max_bad_fraction = f.GetDouble("max_bad_fraction");
  o->strict = f.GetBool("strict");
  o->model_options = ModelOptionsFromFlags(f);
  const std::string data = f.Get("data_location");
  std::error_code ec;
  if (fs::is_directory(data, ec)) {
    std::string train, eval;
    Status s = FindDataFiles(data, /*need_eval=*/true, &train, &eval);
    if (!s.ok()) return Status(s.code(), "--data_location: " + s.message());
    o->files = {eval};
  } else if (fs::exists(data, ec)) {
    o->files = {data};
  } else {
    return NotFound("--data_location=" + data + ": no such file or folder");
  }
  return Status::Ok();
}

Status MakeServeOptions(const FlagSet& f, serving::ServeOptions* o) {
  *o = serving::ServeOptions();
  o->model = f.Get("model");
  o->model_options = ModelOptionsFromFlags(f);
  o->bind = f.Get("bind").empty() ? "127.0.0.1" : f.Get("bind");
  o->port = static_cast<int>(f.GetInt("port"));
  Status s = LoadSecurity(f, &o->security);
  if (!s.ok()) return s;
  o->insecure = f.GetBool("insecure");
  o->batch_wait_us = f.GetInt("batch_wait_us");
  o->max_batch_rows = static_cast<int>(f.GetInt("max_batch_rows"));
  o->scoring_threads =
      f.GetInt("threads") > 0 ? static_cast<int>(f.GetInt("threads")) : std::max(1, CoresForScoring() / 2);
  o->handler_threads = std::max(4, 2 * CoresForScoring());
  o->max_message_bytes = f.GetInt("max_message_mb") << 20;
  o->watch = f.GetBool("watch");
  o->watch_interval_ms = static_cast<int>(f.GetInt("watch_interval_ms"));
  o->metrics_port = f.GetInt("metrics_port") > 0 ? static_cast<int>(f.GetInt("metrics_port")) : -1;
  return Status::Ok();
}

}  // namespace deepfm::launcher

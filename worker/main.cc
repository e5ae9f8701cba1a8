// worker: trains DeepFM against running ps_server shards and evaluates.
// Flags follow DeepRec model-zoo train.py where they apply; the logic lives in
// libworker (Trainer, PsClient, BatchReader).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/malloc_tuning.h"
#include "worker/server_check.h"
#include "worker/trainer.h"

DEFINE_string(data_location, "./data", "folder with train.csv/eval.csv (or train.txt/eval.txt)");
DEFINE_string(data_format, "auto", "auto, csv or tsv");
DEFINE_int64(steps, 0, "stop at this global step; 0 trains one pass over the data (--num_epochs)");
DEFINE_int32(num_epochs, 1, "passes over the training data when --steps does not stop earlier");
DEFINE_int32(batch_size, 512, "rows per step per worker");
DEFINE_double(learning_rate, 0.001, "must match the servers' (checked)");
DEFINE_string(optimizer, "adamasync", "must match the servers' (checked)");
DEFINE_int64(seed, 2026, "initialisation seed (embedding rows and dense weights)");
DEFINE_bool(no_eval, false, "skip evaluation after training");
DEFINE_string(output_dir, "./result", "where metrics.json and worker logs go");
DEFINE_string(ps_hosts, "", "comma-separated host:port of every shard, shard 0 first");
DEFINE_int32(task_index, 0, "this worker's index; worker 0 is the chief and evaluates");
DEFINE_int32(num_workers, 1, "workers in the job; each trains on lines i % num_workers == task_index");
DEFINE_string(hidden_units, "1024,256,32", "DNN hidden layer widths");
DEFINE_int32(embedding_dim, 16, "embedding dimension D");
DEFINE_int32(staleness, 1, "pushes the next pulls may run ahead of; 0 = synchronous, deterministic");
DEFINE_double(max_bad_fraction, 0.001, "fail when more than this fraction of lines is bad");
DEFINE_bool(strict, false, "fail on the first bad input line");
DEFINE_int32(log_every, 100, "log every N steps");
DEFINE_int32(rpc_deadline_ms, 60000, "deadline of every RPC to a parameter server");
DEFINE_bool(bf16, false, "BF16 training: bf16 on the wire and bf16 storage in FM + DNN (fp32 accumulation)");
DEFINE_int32(dnn_threads, 1, "threads per DNN GEMM (the step's own thread included)");
DEFINE_bool(shutdown_ps, false, "ask every shard to stop when done");
DEFINE_string(checkpoint, "", "checkpoint folder: the chief saves here; shards restore from it");
DEFINE_int64(save_steps, 0, "save a checkpoint every N global steps (and at the end); 0 = only at the end");
DEFINE_int32(keep_checkpoint_max, 5, "keep the newest N checkpoints; 0 keeps all");

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The data file for `split` ("train" or "eval") under --data_location.
std::string FindFile(const std::string& split) {
  namespace fs = std::filesystem;
  for (const char* ext : {".csv", ".txt", ".tsv"}) {
    const fs::path p = fs::path(FLAGS_data_location) / (split + ext);
    if (fs::exists(p)) return p.string();
  }
  return (fs::path(FLAGS_data_location) / (split + ".csv")).string();
}

int Fail(const std::string& what) {
  fprintf(stderr, "worker %d: error: %s\n", FLAGS_task_index, what.c_str());
  return 1;
}

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("worker --ps_hosts=h:p,... --data_location=DIR [train.py flags]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  deepfm::TuneMallocForLargeBuffers();
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  using namespace deepfm;

  ReaderOptions::Format format = ReaderOptions::kAuto;
  if (FLAGS_data_format == "csv") format = ReaderOptions::kCsv;
  else if (FLAGS_data_format == "tsv") format = ReaderOptions::kTsv;
  else if (FLAGS_data_format != "auto") return Fail("--data_format must be auto, csv or tsv");
  if (FLAGS_num_workers < 1 || FLAGS_task_index < 0 || FLAGS_task_index >= FLAGS_num_workers) {
    return Fail("--task_index must lie in [0, --num_workers)");
  }

  TrainerOptions to;
  to.model.embedding_dim = FLAGS_embedding_dim;
  to.model.bf16 = FLAGS_bf16;
  to.model.dnn_threads = std::max(1, FLAGS_dnn_threads);
  to.model.hidden_units.clear();
  for (const std::string& u : Split(FLAGS_hidden_units, ',')) {
    const int v = std::atoi(u.c_str());
    if (v <= 0) return Fail("--hidden_units: '" + u + "' is not a positive width");
    to.model.hidden_units.push_back(v);
  }
  to.train_data.files = {FindFile("train")};
  to.train_data.format = format;
  to.train_data.batch_size = FLAGS_batch_size;
  to.train_data.part_index = FLAGS_task_index;
  to.train_data.num_parts = FLAGS_num_workers;
  to.train_data.num_epochs = FLAGS_num_epochs;
  to.train_data.max_bad_fraction = FLAGS_max_bad_fraction;
  to.train_data.strict = FLAGS_strict;
  to.steps = FLAGS_steps;
  to.staleness = FLAGS_staleness;
  to.seed = static_cast<uint64_t>(FLAGS_seed);
  to.log_every = FLAGS_log_every;
  to.log_prefix = "worker" + std::to_string(FLAGS_task_index);
  to.is_chief = FLAGS_task_index == 0;
  to.checkpoint_dir = FLAGS_checkpoint;
  to.save_steps = FLAGS_save_steps;
  to.keep_checkpoint_max = FLAGS_keep_checkpoint_max;
  to.optimizer_name = FLAGS_optimizer;
  to.num_workers = FLAGS_num_workers;
  to.task_index = FLAGS_task_index;

  PsClientOptions co;
  co.hosts = Split(FLAGS_ps_hosts, ',');
  co.rpc_deadline_ms = FLAGS_rpc_deadline_ms;
  co.wire_dtype = FLAGS_bf16 ? ps::BF16 : ps::F32;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  if (!s.ok()) return Fail(s.message());

  // The optimizer runs on the servers; refuse to train against servers that
  // were started with something else than this worker was asked for.
  std::vector<ps::StatsResponse> stats;
  s = client->Stats(&stats);
  if (!s.ok()) return Fail(s.message());
  s = CheckServersMatch(stats, co.hosts, FLAGS_optimizer, FLAGS_learning_rate);
  if (!s.ok()) return Fail(s.message());

  Trainer trainer(to, client.get());
  s = trainer.Setup();
  if (!s.ok()) return Fail(s.message());
  TrainResult tr;
  s = trainer.Train(&tr);
  if (!s.ok()) return Fail(s.message());
  const double sps = tr.seconds > 0 ? tr.rows / tr.seconds : 0;
  const StepSplit& sp = tr.split;
  printf("%s trained %lld steps, %lld rows in %.2f s: %.0f samples/sec, global_step %lld, "
         "bad_lines %lld\n",
         to.log_prefix.c_str(), static_cast<long long>(tr.local_steps),
         static_cast<long long>(tr.rows), tr.seconds, sps, static_cast<long long>(tr.global_step),
         static_cast<long long>(tr.bad_lines));
  printf("%s step split (us/step): wait %.0f compute %.0f handoff %.0f | prefetch: read %.0f "
         "dedup %.0f pull %.0f | push %.0f | wire bytes/step pull %llu push %llu\n",
         to.log_prefix.c_str(), sp.wait_us, sp.compute_us, sp.handoff_us, sp.read_us, sp.dedup_us,
         sp.pull_us, sp.push_us, static_cast<unsigned long long>(sp.pull_bytes),
         static_cast<unsigned long long>(sp.push_bytes));
  fflush(stdout);

  std::filesystem::create_directories(FLAGS_output_dir);
  {
    std::ofstream w(std::filesystem::path(FLAGS_output_dir) / (to.log_prefix + ".json"));
    w << "{\"task_index\": " << FLAGS_task_index << ", \"train_rows\": " << tr.rows
      << ", \"train_seconds\": " << Num(tr.seconds) << ", \"local_steps\": " << tr.local_steps
      << ", \"global_step\": " << tr.global_step << ", \"bad_lines\": " << tr.bad_lines
      << ", \"train_samples_per_sec\": " << Num(sps) << ", \"last_loss\": " << Num(tr.last_loss)
      << ", \"split_us\": {\"wait\": " << Num(sp.wait_us) << ", \"compute\": " << Num(sp.compute_us)
      << ", \"handoff\": " << Num(sp.handoff_us) << ", \"read\": " << Num(sp.read_us)
      << ", \"dedup\": " << Num(sp.dedup_us) << ", \"pull\": " << Num(sp.pull_us)
      << ", \"push\": " << Num(sp.push_us) << "}, \"pull_bytes_per_step\": " << sp.pull_bytes
      << ", \"push_bytes_per_step\": " << sp.push_bytes << ", \"bf16\": " << (FLAGS_bf16 ? "true" : "false")
      << "}\n";
  }

  if (FLAGS_task_index == 0) {
    EvalResult er;
    if (!FLAGS_no_eval) {
      ReaderOptions eo;
      eo.files = {FindFile("eval")};
      eo.format = format;
      eo.batch_size = 4096;
      eo.max_bad_fraction = FLAGS_max_bad_fraction;
      eo.strict = FLAGS_strict;
      s = trainer.Evaluate(eo, &er);
      if (!s.ok()) return Fail(s.message());
      printf("%s eval: auc %.6f logloss %.6f accuracy %.6f rows %lld (%.2f s)\n",
             to.log_prefix.c_str(), er.auc, er.logloss, er.accuracy,
             static_cast<long long>(er.rows), er.seconds);
    }
    std::ofstream m(std::filesystem::path(FLAGS_output_dir) / "metrics.json");
    m << "{\"auc\": " << (FLAGS_no_eval ? "null" : Num(er.auc))
      << ", \"logloss\": " << (FLAGS_no_eval ? "null" : Num(er.logloss))
      << ", \"accuracy\": " << (FLAGS_no_eval ? "null" : Num(er.accuracy))
      << ", \"global_step\": " << tr.global_step << ", \"train_samples_per_sec\": " << Num(sps)
      << ", \"bad_lines\": " << tr.bad_lines + er.bad_lines << ", \"train_rows\": " << tr.rows
      << ", \"train_seconds\": " << Num(tr.seconds) << ", \"eval_rows\": " << er.rows << "}\n";
  }
  if (FLAGS_shutdown_ps) {
    s = client->ShutdownAll();
    if (!s.ok()) LOG(WARNING) << "shutting the servers down: " << s.message();
  }
  return 0;
}

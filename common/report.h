// The result files of a job, written and read by this library only: every
// worker's report (worker<i>.json) and the job's metrics (metrics.json).
// The launcher, the tests and the benchmarks read results through these
// types, never from a process's printed lines. JSON (nlohmann-json); a
// number that is not finite is written as null and read back as NaN.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm {

struct EvalReport {
  double auc = 0, logloss = 0, accuracy = 0;
  int64_t rows = 0;
  int64_t bad_lines = 0;
  double seconds = 0;
};

// One trainer's account of its training (and, for the chief, evaluation).
struct WorkerReport {
  int trainer_index = 0;  // place among the trainers (chief first)
  std::string task;       // "worker:0", "chief:0"
  int64_t train_rows = 0;
  // Where this process's reader started: rows of its share of the data
  // already trained before it (by a checkpoint it resumed from, or by its
  // previous process when it was restarted alone), in epoch resumed_epoch.
  int64_t resumed_rows = 0;
  int resumed_epoch = 0;
  double train_seconds = 0;
  int64_t local_steps = 0;
  int64_t global_step = 0;  // the step this worker last saw
  int64_t bad_lines = 0;
  double last_loss = 0;
  // Microseconds per step: wait, compute, handoff, read, dedup, pull, push.
  std::map<std::string, double> split_us;
  uint64_t pull_bytes_per_step = 0;
  uint64_t push_bytes_per_step = 0;
  // Per shard: bytes per step moved with it (pull and push, both
  // directions), and of those the dense variables' values and gradients.
  std::vector<uint64_t> shard_bytes_per_step;
  std::vector<uint64_t> shard_dense_bytes_per_step;
  bool bf16 = false;
  std::string dnn_isa;  // the DNN kernel path it ran: generic, avx2, avx512
  int dnn_threads = 1;  // threads per DNN GEMM
  bool native_bf16 = false;  // bf16 GEMMs on the CPU's bf16 dot products (AVX512_BF16)
  bool has_eval = false;
  EvalReport eval;

  double samples_per_sec() const { return train_seconds > 0 ? train_rows / train_seconds : 0; }
};

// One embedding table at the end of a job, summed over the shards
// (admission and eviction: ps/ev_policy.h).
struct TableMetrics {
  uint64_t rows = 0;
  uint64_t bytes = 0;            // rows, key index and admission filter
  uint64_t admitted = 0;         // rows the admission filter created
  uint64_t filtered = 0;         // reads of keys not admitted (initial values served)
  uint64_t filtered_grads = 0;   // gradients dropped for keys not yet admitted
  uint64_t evicted_ttl = 0;      // by --ev_steps_to_live
  uint64_t evicted_l2 = 0;       // by --ev_l2_threshold
  uint64_t evicted_budget = 0;   // by --ps_memory_budget_mb
  uint64_t filter_bytes = 0;
  uint64_t evicted() const { return evicted_ttl + evicted_l2 + evicted_budget; }
  double bytes_per_row() const { return rows > 0 ? static_cast<double>(bytes) / rows : 0; }
};

// The job's result, written by the chief once every trainer has reported.
struct JobMetrics {
  bool has_eval = false;
  EvalReport eval;  // the chief's evaluation
  int64_t global_step = 0;
  int64_t train_rows = 0;    // every trainer's rows
  int64_t resumed_rows = 0;  // rows every trainer resumed past (see WorkerReport)
  double train_seconds = 0;  // the slowest trainer's training time
  int64_t bad_lines = 0;     // training and evaluation
  int workers = 0;           // trainers in the job
  int workers_reported = 0;  // trainers whose report was found
  int ps = 0;
  std::map<std::string, TableMetrics> tables;  // by table name

  double samples_per_sec() const { return train_seconds > 0 ? train_rows / train_seconds : 0; }
};

// What ran: written by the launcher into the job folder (job.json) when a
// job starts, read by `deepfm report`.
struct JobInfo {
  std::string command;                         // "train", "train --standalone"
  std::string started;                         // local time, ISO 8601
  std::map<std::string, std::string> flags;    // every flag of the command, as it ran
  std::vector<std::string> flags_set;          // those the user gave
  std::map<std::string, std::string> machine;  // cpu, cores, isa, memory, host, kernel
};

std::string WorkerReportFileName(int trainer_index);  // "worker<i>.json"

Status WriteWorkerReport(const std::string& path, const WorkerReport& r);
Status ReadWorkerReport(const std::string& path, WorkerReport* r);
Status WriteJobMetrics(const std::string& path, const JobMetrics& m);
Status ReadJobMetrics(const std::string& path, JobMetrics* m);
Status WriteJobInfo(const std::string& path, const JobInfo& info);
Status ReadJobInfo(const std::string& path, JobInfo* info);

// The job's metrics from its trainers' reports (the chief's carries the
// evaluation) and the job's shape.
JobMetrics SummarizeJob(const std::vector<WorkerReport>& reports, int workers, int ps);

}  // namespace deepfm

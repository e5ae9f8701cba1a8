#include "worker/worker_task.h"

#include <glog/logging.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "common/exit_codes.h"
#include "common/malloc_tuning.h"
#include "common/report.h"
#include "obs/event_writer.h"
#include "obs/metrics_endpoint.h"
#include "obs/shard_stats_metrics.h"
#include "obs/trainer_metrics.h"
#include "worker/dnn_kernels.h"
#include "worker/heartbeat.h"
#include "worker/server_check.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;

WorkerReport MakeReport(const WorkerTaskOptions& o, const TrainResult& tr) {
  WorkerReport r;
  r.trainer_index = o.trainer.task_index;
  r.task = o.name;
  r.train_rows = tr.rows;
  r.resumed_rows = tr.start.epoch_rows;
  r.resumed_epoch = tr.start.epoch;
  r.train_seconds = tr.seconds;
  r.local_steps = tr.local_steps;
  r.global_step = tr.global_step;
  r.bad_lines = tr.bad_lines;
  r.last_loss = tr.last_loss;
  const StepSplit& sp = tr.split;
  r.split_us = {{"wait", sp.wait_us}, {"compute", sp.compute_us}, {"handoff", sp.handoff_us},
                {"read", sp.read_us}, {"dedup", sp.dedup_us},     {"pull", sp.pull_us},
                {"push", sp.push_us}};
  r.pull_bytes_per_step = sp.pull_bytes;
  r.push_bytes_per_step = sp.push_bytes;
  r.shard_bytes_per_step = sp.shard_bytes;
  r.shard_dense_bytes_per_step = sp.shard_dense_bytes;
  r.bf16 = o.trainer.model.bf16;
  r.dnn_threads = o.trainer.model.dnn_threads;
  r.dnn_isa = o.trainer.model.dnn_isa.empty() ? dnn::ActiveKernels().name : o.trainer.model.dnn_isa;
  // As the model decides (DeepFMModelT's constructor).
  r.native_bf16 = r.bf16 && r.dnn_isa == "avx512" && dnn::NativeBf16Gemm() != nullptr;
  return r;
}

void PrintTraining(const WorkerTaskOptions& o, const TrainResult& tr) {
  const StepSplit& sp = tr.split;
  printf(
      "%s trained %lld steps, %lld rows in %.2f s: %.0f samples/sec, global_step %lld, bad_lines "
      "%lld\n",
      o.name.c_str(), static_cast<long long>(tr.local_steps), static_cast<long long>(tr.rows),
      tr.seconds, tr.seconds > 0 ? tr.rows / tr.seconds : 0.0,
      static_cast<long long>(tr.global_step), static_cast<long long>(tr.bad_lines));
  printf(
      "%s step split (us/step): wait %.0f compute %.0f handoff %.0f | prefetch: read %.0f dedup "
      "%.0f "
      "pull %.0f | push %.0f | wire bytes/step pull %llu push %llu\n",
      o.name.c_str(), sp.wait_us, sp.compute_us, sp.handoff_us, sp.read_us, sp.dedup_us, sp.pull_us,
      sp.push_us, static_cast<unsigned long long>(sp.pull_bytes),
      static_cast<unsigned long long>(sp.push_bytes));
  fflush(stdout);
}

// Every table summed over the shards' Stats.
std::map<std::string, TableMetrics> SumTables(const std::vector<ps::StatsResponse>& shards) {
  std::map<std::string, TableMetrics> out;
  for (const ps::StatsResponse& st : shards) {
    for (const ps::TableStats& ts : st.tables()) {
      TableMetrics& t = out[ts.name()];
      t.rows += ts.rows();
      t.bytes += ts.bytes();
      t.admitted += ts.admitted();
      t.filtered += ts.filtered_reads();
      t.filtered_grads += ts.filtered_grads();
      t.evicted_ttl += ts.evicted_ttl();
      t.evicted_l2 += ts.evicted_l2();
      t.evicted_budget += ts.evicted_budget();
      t.filter_bytes += ts.filter_bytes();
    }
  }
  return out;
}

void PrintTables(const WorkerTaskOptions& o, const std::map<std::string, TableMetrics>& tables) {
  TableMetrics all;
  for (const auto& [name, t] : tables) {
    all.rows += t.rows;
    all.bytes += t.bytes;
    all.admitted += t.admitted;
    all.filtered += t.filtered;
    all.evicted_ttl += t.evicted_ttl;
    all.evicted_l2 += t.evicted_l2;
    all.evicted_budget += t.evicted_budget;
  }
  printf("%s tables: %zu, rows %llu (%.1f MB, %.0f bytes/row), admitted %llu, filtered reads %llu, "
         "evicted %llu (steps_to_live %llu, l2 %llu, budget %llu)\n",
         o.name.c_str(), tables.size(), static_cast<unsigned long long>(all.rows), all.bytes / 1e6,
         all.bytes_per_row(), static_cast<unsigned long long>(all.admitted),
         static_cast<unsigned long long>(all.filtered), static_cast<unsigned long long>(all.evicted()),
         static_cast<unsigned long long>(all.evicted_ttl), static_cast<unsigned long long>(all.evicted_l2),
         static_cast<unsigned long long>(all.evicted_budget));
  fflush(stdout);
}

// Each shard's tables' rows and bytes, for TensorBoard and the report.
std::map<std::string, double> TableScalars(const std::vector<ps::StatsResponse>& stats) {
  std::map<std::string, double> sizes;
  for (const ps::StatsResponse& st : stats) {
    for (const ps::TableStats& ts : st.tables()) {
      const std::string prefix = "tables/" + ts.name() + "/shard" + std::to_string(st.shard_index());
      sizes[prefix + "/rows"] = static_cast<double>(ts.rows());
      sizes[prefix + "/bytes"] = static_cast<double>(ts.bytes());
    }
  }
  return sizes;
}

// The chief, once every trainer has reported done: the job's metrics from
// every report found in the job folder, and the tables from the shards.
Status WriteMetrics(const WorkerTaskOptions& o, const WorkerReport& own, PsClient* client,
                    obs::EventWriter* events, int64_t global_step) {
  const int num_ps = client->num_shards();
  std::vector<WorkerReport> reports{own};
  for (int i = 0; i < o.trainer.num_workers; ++i) {
    if (i == o.trainer.task_index) continue;
    WorkerReport r;
    const std::string path = (fs::path(o.output_dir) / WorkerReportFileName(i)).string();
    Status s = ReadWorkerReport(path, &r);
    if (s.ok()) {
      reports.push_back(r);
    } else {
      LOG(WARNING) << o.name << ": no report of trainer " << i << " (" << s.message()
                   << "); is the job folder on a filesystem every task shares?";
    }
  }
  JobMetrics m = SummarizeJob(reports, o.trainer.num_workers, num_ps);
  std::vector<ps::StatsResponse> stats;
  Status s = client->Stats(&stats);
  if (!s.ok()) return s;
  m.tables = SumTables(stats);
  PrintTables(o, m.tables);
  s = events->AddScalars(global_step, TableScalars(stats));
  if (!s.ok()) return s;
  return WriteJobMetrics((fs::path(o.output_dir) / "metrics.json").string(), m);
}

int Fail(const WorkerTaskOptions& o, const Status& s) {
  fprintf(stderr, "%s: error: %s\n", o.name.c_str(), s.message().c_str());
  return ExitCodeFor(s);
}

}  // namespace

int RunWorkerTask(const WorkerTaskOptions& o) {
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(o.client, &client);
  if (!s.ok()) return Fail(o, s);
  return RunWorkerTask(o, std::move(client));
}

int RunWorkerTask(const WorkerTaskOptions& o, std::unique_ptr<PsClient> client) {
  TuneMallocForLargeBuffers();
  Status s;
  // The optimizer runs on the servers; refuse to train against servers that
  // were started with something else than this worker was asked for.
  std::vector<ps::StatsResponse> stats;
  s = client->Stats(&stats);
  if (!s.ok()) return Fail(o, s);
  s = CheckServersMatch(stats, o.client.hosts,
                        ExpectedJob{o.optimizer, o.learning_rate, o.trainer.checkpoint_dir});
  if (!s.ok()) return Fail(o, s);
  // The chief commits every checkpoint: find out now, not at the first save.
  if (o.trainer.is_chief) {
    s = CheckJobFolderWritable(o.output_dir);
    if (!s.ok()) return Fail(o, s);
  }

  TrainerProgress progress;
  TrainerOptions to = o.trainer;
  to.progress = &progress;
  std::unique_ptr<obs::MetricsEndpoint> metrics_page;
  std::unique_ptr<obs::TrainerMetrics> metrics;
  if (o.metrics_port > 0) {
    obs::MetricsEndpointOptions mo;
    mo.bind = o.metrics_bind;
    mo.port = o.metrics_port;
    mo.security = o.metrics_security;
    mo.tls = o.client.security;
    mo.insecure = o.insecure;
    s = obs::MetricsEndpoint::Start(mo, &metrics_page);
    if (!s.ok()) return Fail(o, s);
    metrics = std::make_unique<obs::TrainerMetrics>(metrics_page->registry(), o.name);
    to.metrics = metrics.get();
    for (const auto& [task, read] : o.shard_stats) {
      metrics_page->Add(std::make_shared<obs::ShardStatsCollector>(task, read));
    }
    printf("%s: metrics at %s\n", o.name.c_str(), metrics_page->url().c_str());
    fflush(stdout);
  }
  // The chief writes TensorBoard event files: train/ and eval/ of the job
  // folder, as tf.estimator does.
  std::unique_ptr<obs::EventWriter> train_events, eval_events;
  if (to.is_chief) {
    s = obs::EventWriter::Open((fs::path(o.output_dir) / "train").string(), &train_events);
    if (s.ok() && o.evaluate) {
      s = obs::EventWriter::Open((fs::path(o.output_dir) / "eval").string(), &eval_events);
    }
    if (!s.ok()) return Fail(o, s);
    to.on_interval = [&](const IntervalReport& r) {
      const Status e = train_events->AddScalars(
          r.global_step, {{"loss", r.loss},
                          {"learning_rate", o.learning_rate},
                          {"samples_per_sec", r.samples_per_sec},
                          {"global_step/sec", r.global_steps_per_sec},
                          {"step_time/wait_us", r.wait_us},
                          {"step_time/compute_us", r.compute_us},
                          {"step_time/handoff_us", r.handoff_us}});
      if (!e.ok()) LOG(WARNING) << o.name << ": " << e.message();
      // The tables' growth: one Stats call per shard every --log_every steps.
      std::vector<ps::StatsResponse> now;
      if (client->Stats(&now).ok()) {
        const Status t = train_events->AddScalars(r.global_step, TableScalars(now));
        if (!t.ok()) LOG(WARNING) << o.name << ": " << t.message();
      }
    };
  }
  std::error_code ec;
  fs::create_directories(o.output_dir, ec);
  if (ec) return Fail(o, Internal("cannot create " + o.output_dir + ": " + ec.message()));
  const std::string report_path =
      (fs::path(o.output_dir) / WorkerReportFileName(to.task_index)).string();
  {
    HeartbeatSender heartbeat(client.get(), static_cast<uint32_t>(to.task_index), &progress);
    // The last heartbeat says FAILED, so the chief stops waiting at once.
    auto failed = [&](const Status& error) {
      progress.Enter(ps::FAILED);
      return Fail(o, error);
    };
    Trainer trainer(to, client.get());
    s = trainer.Setup();
    if (!s.ok()) return failed(s);
    TrainResult tr;
    s = trainer.TrainSteps(&tr);
    if (!s.ok()) return failed(s);
    PrintTraining(o, tr);
    WorkerReport report = MakeReport(o, tr);
    // A trainer's report is on disk before it says it is done, so the chief
    // finds every report once every trainer is done.
    if (!to.is_chief) {
      s = WriteWorkerReport(report_path, report);
      if (!s.ok()) return failed(s);
    }
    s = trainer.Finish(&tr);
    if (!s.ok()) return failed(s);
    if (to.is_chief) {
      report.global_step = tr.global_step;
      if (o.evaluate) {
        EvalResult er;
        s = trainer.Evaluate(o.eval_data, &er);
        if (!s.ok()) return failed(s);
        printf("%s eval: auc %.6f logloss %.6f accuracy %.6f rows %lld (%.2f s)\n", o.name.c_str(),
               er.auc, er.logloss, er.accuracy, static_cast<long long>(er.rows), er.seconds);
        fflush(stdout);
        report.has_eval = true;
        report.eval = er;
        s = eval_events->AddScalars(tr.global_step, {{"auc", er.auc},
                                                     {"logloss", er.logloss},
                                                     {"accuracy", er.accuracy}});
        if (!s.ok()) return failed(s);
      }
      s = WriteWorkerReport(report_path, report);
      if (s.ok()) s = WriteMetrics(o, report, client.get(), train_events.get(), tr.global_step);
      if (!s.ok()) return failed(s);
    }
    progress.Enter(ps::FINISHED);
  }
  if (o.shutdown_ps) {
    s = client->ShutdownAll();
    if (!s.ok()) LOG(WARNING) << o.name << ": shutting the servers down: " << s.message();
  }
  return 0;
}

}  // namespace deepfm

#include "common/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/checkpoint_manifest.h"

namespace deepfm {
namespace {

using json = nlohmann::json;

json Num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Reads key from obj: a missing key is an error naming the file and key;
// null reads as NaN.
template <typename T>
Status Get(const json& obj, const char* key, const std::string& path, T* out) {
  if (!obj.contains(key)) return DataLoss(path + ": no \"" + std::string(key) + "\"");
  const json& v = obj.at(key);
  try {
    if constexpr (std::is_floating_point_v<T>) {
      *out = v.is_null() ? std::numeric_limits<T>::quiet_NaN() : v.get<T>();
    } else {
      *out = v.get<T>();
    }
  } catch (const json::exception& e) {
    return DataLoss(path + ": \"" + std::string(key) + "\" has the wrong type: " + e.what());
  }
  return Status::Ok();
}

json EvalJson(const EvalReport& e) {
  return {{"auc", Num(e.auc)}, {"logloss", Num(e.logloss)}, {"accuracy", Num(e.accuracy)},
          {"rows", e.rows},    {"bad_lines", e.bad_lines},  {"seconds", Num(e.seconds)}};
}

Status ReadEval(const json& j, const std::string& path, EvalReport* e) {
  Status s = Get(j, "auc", path, &e->auc);
  if (s.ok()) s = Get(j, "logloss", path, &e->logloss);
  if (s.ok()) s = Get(j, "accuracy", path, &e->accuracy);
  if (s.ok()) s = Get(j, "rows", path, &e->rows);
  if (s.ok()) s = Get(j, "bad_lines", path, &e->bad_lines);
  if (s.ok()) s = Get(j, "seconds", path, &e->seconds);
  return s;
}

Status Load(const std::string& path, json* doc) {
  std::string text;
  Status s = ReadFile(path, &text);
  if (!s.ok()) return s;
  try {
    *doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return DataLoss(path + ": not valid JSON: " + e.what());
  }
  if (!doc->is_object()) return DataLoss(path + ": not a JSON object");
  return Status::Ok();
}

}  // namespace

std::string WorkerReportFileName(int trainer_index) {
  return "worker" + std::to_string(trainer_index) + ".json";
}

Status WriteWorkerReport(const std::string& path, const WorkerReport& r) {
  json split = json::object();
  for (const auto& [k, v] : r.split_us) split[k] = Num(v);
  json doc = {{"trainer_index", r.trainer_index},
              {"task", r.task},
              {"train_rows", r.train_rows},
              {"resumed_rows", r.resumed_rows},
              {"resumed_epoch", r.resumed_epoch},
              {"train_seconds", Num(r.train_seconds)},
              {"train_samples_per_sec", Num(r.samples_per_sec())},
              {"local_steps", r.local_steps},
              {"global_step", r.global_step},
              {"bad_lines", r.bad_lines},
              {"last_loss", Num(r.last_loss)},
              {"split_us", split},
              {"pull_bytes_per_step", r.pull_bytes_per_step},
              {"push_bytes_per_step", r.push_bytes_per_step},
              {"shard_bytes_per_step", r.shard_bytes_per_step},
              {"shard_dense_bytes_per_step", r.shard_dense_bytes_per_step},
              {"bf16", r.bf16},
              {"dnn_isa", r.dnn_isa},
              {"dnn_threads", r.dnn_threads},
              {"native_bf16", r.native_bf16},
              {"eval", r.has_eval ? EvalJson(r.eval) : json(nullptr)}};
  return WriteFileAtomic(path, doc.dump(2) + "\n");
}

Status ReadWorkerReport(const std::string& path, WorkerReport* r) {
  *r = WorkerReport();
  json doc;
  Status s = Load(path, &doc);
  if (s.ok()) s = Get(doc, "trainer_index", path, &r->trainer_index);
  if (s.ok()) s = Get(doc, "task", path, &r->task);
  if (s.ok()) s = Get(doc, "train_rows", path, &r->train_rows);
  if (s.ok()) s = Get(doc, "resumed_rows", path, &r->resumed_rows);
  if (s.ok()) s = Get(doc, "resumed_epoch", path, &r->resumed_epoch);
  if (s.ok()) s = Get(doc, "train_seconds", path, &r->train_seconds);
  if (s.ok()) s = Get(doc, "local_steps", path, &r->local_steps);
  if (s.ok()) s = Get(doc, "global_step", path, &r->global_step);
  if (s.ok()) s = Get(doc, "bad_lines", path, &r->bad_lines);
  if (s.ok()) s = Get(doc, "last_loss", path, &r->last_loss);
  if (s.ok()) s = Get(doc, "pull_bytes_per_step", path, &r->pull_bytes_per_step);
  if (s.ok()) s = Get(doc, "push_bytes_per_step", path, &r->push_bytes_per_step);
  if (s.ok()) s = Get(doc, "shard_bytes_per_step", path, &r->shard_bytes_per_step);
  if (s.ok()) s = Get(doc, "shard_dense_bytes_per_step", path, &r->shard_dense_bytes_per_step);
  if (s.ok()) s = Get(doc, "bf16", path, &r->bf16);
  if (s.ok()) s = Get(doc, "dnn_isa", path, &r->dnn_isa);
  if (s.ok()) s = Get(doc, "dnn_threads", path, &r->dnn_threads);
  if (s.ok()) s = Get(doc, "native_bf16", path, &r->native_bf16);
  if (!s.ok()) return s;
  if (!doc.contains("split_us") || !doc["split_us"].is_object())
    return DataLoss(path + ": no \"split_us\" object");
  for (const auto& [k, v] : doc["split_us"].items()) {
    r->split_us[k] = v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
  }
  if (doc.contains("eval") && !doc["eval"].is_null()) {
    r->has_eval = true;
    return ReadEval(doc["eval"], path, &r->eval);
  }
  return Status::Ok();
}

Status WriteJobInfo(const std::string& path, const JobInfo& info) {
  const json doc = {{"command", info.command},
                    {"started", info.started},
                    {"flags", info.flags},
                    {"flags_set", info.flags_set},
                    {"machine", info.machine}};
  return WriteFileAtomic(path, doc.dump(2) + "\n");
}

Status ReadJobInfo(const std::string& path, JobInfo* info) {
  json doc;
  Status s = Load(path, &doc);
  if (!s.ok()) return s;
  *info = JobInfo();
  s = Get(doc, "command", path, &info->command);
  if (s.ok()) s = Get(doc, "started", path, &info->started);
  if (s.ok()) s = Get(doc, "flags", path, &info->flags);
  if (s.ok()) s = Get(doc, "flags_set", path, &info->flags_set);
  if (s.ok()) s = Get(doc, "machine", path, &info->machine);
  return s;
}

Status WriteJobMetrics(const std::string& path, const JobMetrics& m) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  json doc = {{"auc", Num(m.has_eval ? m.eval.auc : nan)},
              {"logloss", Num(m.has_eval ? m.eval.logloss : nan)},
              {"accuracy", Num(m.has_eval ? m.eval.accuracy : nan)},
              {"eval_rows", m.has_eval ? m.eval.rows : 0},
              {"global_step", m.global_step},
              {"train_rows", m.train_rows},
              {"resumed_rows", m.resumed_rows},
              {"train_seconds", Num(m.train_seconds)},
              {"train_samples_per_sec", Num(m.samples_per_sec())},
              {"bad_lines", m.bad_lines},
              {"workers", m.workers},
              {"workers_reported", m.workers_reported},
              {"ps", m.ps}};
  json tables = json::object();
  for (const auto& [name, t] : m.tables) {
    tables[name] = {{"rows", t.rows},
                    {"bytes", t.bytes},
                    {"bytes_per_row", Num(t.bytes_per_row())},
                    {"admitted", t.admitted},
                    {"filtered", t.filtered},
                    {"filtered_grads", t.filtered_grads},
                    {"evicted", t.evicted()},
                    {"evicted_ttl", t.evicted_ttl},
                    {"evicted_l2", t.evicted_l2},
                    {"evicted_budget", t.evicted_budget},
                    {"filter_bytes", t.filter_bytes}};
  }
  doc["tables"] = tables;
  return WriteFileAtomic(path, doc.dump(2) + "\n");
}

Status ReadJobMetrics(const std::string& path, JobMetrics* m) {
  *m = JobMetrics();
  json doc;
  Status s = Load(path, &doc);
  if (s.ok()) s = Get(doc, "auc", path, &m->eval.auc);
  if (s.ok()) s = Get(doc, "logloss", path, &m->eval.logloss);
  if (s.ok()) s = Get(doc, "accuracy", path, &m->eval.accuracy);
  if (s.ok()) s = Get(doc, "eval_rows", path, &m->eval.rows);
  if (s.ok()) s = Get(doc, "global_step", path, &m->global_step);
  if (s.ok()) s = Get(doc, "train_rows", path, &m->train_rows);
  if (s.ok()) s = Get(doc, "resumed_rows", path, &m->resumed_rows);
  if (s.ok()) s = Get(doc, "train_seconds", path, &m->train_seconds);
  if (s.ok()) s = Get(doc, "bad_lines", path, &m->bad_lines);
  if (s.ok()) s = Get(doc, "workers", path, &m->workers);
  if (s.ok()) s = Get(doc, "workers_reported", path, &m->workers_reported);
  if (s.ok()) s = Get(doc, "ps", path, &m->ps);
  if (s.ok() && doc.contains("tables")) {  // metrics of jobs before the tables were reported lack it
    for (const auto& [name, j] : doc.at("tables").items()) {
      TableMetrics& t = m->tables[name];
      if (s.ok()) s = Get(j, "rows", path, &t.rows);
      if (s.ok()) s = Get(j, "bytes", path, &t.bytes);
      if (s.ok()) s = Get(j, "admitted", path, &t.admitted);
      if (s.ok()) s = Get(j, "filtered", path, &t.filtered);
      if (s.ok()) s = Get(j, "filtered_grads", path, &t.filtered_grads);
      if (s.ok()) s = Get(j, "evicted_ttl", path, &t.evicted_ttl);
      if (s.ok()) s = Get(j, "evicted_l2", path, &t.evicted_l2);
      if (s.ok()) s = Get(j, "evicted_budget", path, &t.evicted_budget);
      if (s.ok()) s = Get(j, "filter_bytes", path, &t.filter_bytes);
    }
  }
  m->has_eval = s.ok() && !std::isnan(m->eval.logloss);
  return s;
}

JobMetrics SummarizeJob(const std::vector<WorkerReport>& reports, int workers, int ps) {
  JobMetrics m;
  m.workers = workers;
  m.ps = ps;
  m.workers_reported = static_cast<int>(reports.size());
  for (const WorkerReport& r : reports) {
    m.train_rows += r.train_rows;
    m.resumed_rows += r.resumed_rows;
    m.train_seconds = std::max(m.train_seconds, r.train_seconds);
    m.bad_lines += r.bad_lines;
    m.global_step = std::max(m.global_step, r.global_step);
    if (r.has_eval) {
      m.has_eval = true;
      m.eval = r.eval;
      m.bad_lines += r.eval.bad_lines;
    }
  }
  return m;
}

}  // namespace deepfm

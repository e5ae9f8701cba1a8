#include "obs/shard_stats_metrics.h"

namespace deepfm::obs {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

class Families {
 public:
  explicit Families(std::string task) : task_(std::move(task)) {}

  void Add(const std::string& name, const std::string& help, MetricType type, double value,
           std::vector<ClientMetric::Label> labels = {}) {
    MetricFamily* f = nullptr;
    for (MetricFamily& e : out_) {
      if (e.name == name) f = &e;
    }
    if (!f) {
      out_.push_back(MetricFamily{name, help, type, {}});
      f = &out_.back();
    }
    ClientMetric m;
    m.label.push_back({"task", task_});
    for (auto& l : labels) m.label.push_back(std::move(l));
    if (type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f->metric.push_back(std::move(m));
  }
  void Counter(const std::string& name, const std::string& help, double v,
               std::vector<ClientMetric::Label> labels = {}) {
    Add(name, help, MetricType::Counter, v, std::move(labels));
  }
  void Gauge(const std::string& name, const std::string& help, double v,
             std::vector<ClientMetric::Label> labels = {}) {
    Add(name, help, MetricType::Gauge, v, std::move(labels));
  }
  std::vector<MetricFamily> Take() { return std::move(out_); }

 private:
  std::string task_;
  std::vector<MetricFamily> out_;
};

}  // namespace

std::vector<MetricFamily> ShardStatsFamilies(const ps::StatsResponse& s, const std::string& task) {
  Families f(task);
  f.Gauge("deepfm_ps_global_step", "the shard's global step", static_cast<double>(s.global_step()));
  f.Gauge("deepfm_ps_dense_params", "dense parameters this shard holds",
          static_cast<double>(s.dense_params()));
  f.Counter("deepfm_ps_pull_requests_total", "Pull calls served", s.pull_requests());
  f.Counter("deepfm_ps_push_requests_total", "Push calls applied", s.push_requests());
  f.Counter("deepfm_ps_pulled_keys_total", "embedding keys read by pulls", s.pulled_keys());
  f.Counter("deepfm_ps_pushed_keys_total", "embedding keys updated by pushes", s.pushed_keys());
  f.Counter("deepfm_ps_bytes_in_total", "request payload bytes received", s.bytes_in());
  f.Counter("deepfm_ps_bytes_out_total", "response payload bytes sent", s.bytes_out());
  f.Counter("deepfm_ps_duplicate_pushes_total",
            "retried pushes answered without applying them again", s.duplicate_pushes());
  f.Counter("deepfm_ps_sweeps_total", "eviction sweeps run", s.sweeps());
  f.Gauge("deepfm_ps_memory_budget_bytes", "--ps_memory_budget_mb in bytes (0: none)",
          s.memory_budget_bytes());
  f.Gauge("deepfm_ps_memory_used_bytes", "bytes charged to the memory budget",
          s.memory_used_bytes());
  f.Gauge("deepfm_ps_memory_peak_bytes", "most bytes ever charged to the memory budget",
          s.memory_peak_bytes());
  f.Gauge("deepfm_ps_process_resident_bytes",
          "the shard process's resident memory (VmRSS): the budget's tables plus the process",
          s.process_rss_bytes());
  f.Gauge("deepfm_ps_process_peak_resident_bytes", "the most the shard process was ever resident (VmHWM)",
          s.process_peak_rss_bytes());
  f.Gauge("deepfm_ps_longest_sweep_hold_seconds", "longest a sweep held one stripe's lock",
          s.longest_sweep_hold_ms() / 1e3);
  for (const ps::TableStats& t : s.tables()) {
    const std::string& n = t.name();
    f.Gauge("deepfm_ps_table_rows", "embedding rows held", t.rows(), {{"table", n}});
    f.Gauge("deepfm_ps_table_bytes", "bytes of rows, key index and admission filter", t.bytes(),
            {{"table", n}});
    f.Gauge("deepfm_ps_table_filter_bytes", "bytes of the admission filter", t.filter_bytes(),
            {{"table", n}});
    f.Counter("deepfm_ps_table_admitted_total", "rows created by the admission filter",
              t.admitted(), {{"table", n}});
    f.Counter("deepfm_ps_table_filtered_reads_total",
              "pulled keys with no row while a filter is on", t.filtered_reads(), {{"table", n}});
    f.Counter("deepfm_ps_table_filtered_grads_total",
              "pushed keys not yet admitted (gradient dropped)", t.filtered_grads(),
              {{"table", n}});
    const char* help = "rows evicted, by the policy that dropped them";
    f.Counter("deepfm_ps_table_evicted_total", help, t.evicted_ttl(),
              {{"table", n}, {"reason", "ttl"}});
    f.Counter("deepfm_ps_table_evicted_total", help, t.evicted_l2(),
              {{"table", n}, {"reason", "l2"}});
    f.Counter("deepfm_ps_table_evicted_total", help, t.evicted_budget(),
              {{"table", n}, {"reason", "budget"}});
    f.Counter("deepfm_ps_table_pending_shed_total",
              "counter-filter keys forgotten under the memory budget (they count from zero again)",
              t.pending_shed(), {{"table", n}});
  }
  return f.Take();
}

std::vector<MetricFamily> ShardStatsCollector::Collect() const {
  ps::StatsResponse stats;
  read_(&stats);
  return ShardStatsFamilies(stats, task_);
}

}  // namespace deepfm::obs

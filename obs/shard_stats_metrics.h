// A shard's Stats (proto/ps.proto StatsResponse) as Prometheus metrics, read
// afresh at every scrape: the page and the Stats RPC report the same
// counters because they are the same numbers. Every metric carries the
// label task="ps:<i>".
//
//   deepfm_ps_global_step, deepfm_ps_dense_params                  gauges
//   deepfm_ps_{pull,push}_requests_total, deepfm_ps_{pulled,pushed}_keys_total,
//   deepfm_ps_bytes_{in,out}_total, deepfm_ps_duplicate_pushes_total,
//   deepfm_ps_sweeps_total                                         counters
//   deepfm_ps_table_{rows,bytes,filter_bytes}{table}               gauges
//   deepfm_ps_table_{admitted,filtered_reads,filtered_grads}_total{table},
//   deepfm_ps_table_evicted_total{table,reason=ttl|l2|budget}      counters
//   deepfm_ps_memory_{budget,used,peak}_bytes,
//   deepfm_ps_longest_sweep_hold_seconds                           gauges
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <string>
#include <vector>

#include "proto/ps.pb.h"

namespace deepfm::obs {

// The families of one Stats answer (pure: what a scrape shows for it).
std::vector<prometheus::MetricFamily> ShardStatsFamilies(const ps::StatsResponse& stats,
                                                         const std::string& task);

class ShardStatsCollector : public prometheus::Collectable {
 public:
  using ReadStats = std::function<void(ps::StatsResponse*)>;
  ShardStatsCollector(std::string task, ReadStats read)
      : task_(std::move(task)), read_(std::move(read)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string task_;
  ReadStats read_;
};

}  // namespace deepfm::obs

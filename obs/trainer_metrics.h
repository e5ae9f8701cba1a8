// A trainer's Prometheus metrics, updated by its pipeline stages as they
// work (every method is a few atomic adds; safe from any thread). Every
// metric carries the label task="worker:<i>" (or "chief:0").
//
//   deepfm_worker_steps_total, deepfm_worker_samples_total         counters
//   deepfm_worker_step_seconds                                     histogram
//     (the compute stage's wall time per step: wait + compute + handoff)
//   deepfm_worker_stage_seconds_total{stage}                       counter
//     (wait, compute, handoff, read, dedup, pull, push: rate() of it is the
//     step-time split, what the benchmark prints)
//   deepfm_worker_loss, deepfm_worker_samples_per_second,
//   deepfm_worker_global_step                                      gauges
//   deepfm_worker_keys_{pulled,pushed}_total,
//   deepfm_worker_bytes_{sent,received}_total                      counters
//   deepfm_rpc_client_seconds{method=Pull|Push}                    histogram
//   deepfm_data_rows_total, deepfm_data_bad_rows_total             counters
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <string>

#include "obs/rpc_latency.h"

namespace deepfm::obs {

class TrainerMetrics {
 public:
  TrainerMetrics(prometheus::Registry& registry, const std::string& task);

  // The prefetch stage, after one batch was read, deduplicated and pulled.
  void Pulled(int64_t rows, int64_t new_bad_rows, uint64_t keys, uint64_t sent, uint64_t received,
              double read_s, double dedup_s, double pull_s);
  // The push stage, after one push was applied.
  void Pushed(uint64_t keys, uint64_t sent, uint64_t received, double push_s, int64_t global_step);
  // The compute stage, after one step.
  void Stepped(int64_t samples, double loss, double wait_s, double compute_s, double handoff_s);
  void Rate(double samples_per_second) { samples_per_second_->Set(samples_per_second); }

 private:
  prometheus::Counter* steps_;
  prometheus::Counter* samples_;
  prometheus::Histogram* step_seconds_;
  prometheus::Counter *wait_, *compute_, *handoff_, *read_, *dedup_, *pull_, *push_;
  prometheus::Gauge* loss_;
  prometheus::Gauge* samples_per_second_;
  prometheus::Gauge* global_step_;
  prometheus::Counter *keys_pulled_, *keys_pushed_, *bytes_sent_, *bytes_received_;
  prometheus::Counter *rows_, *bad_rows_;
  RpcLatency rpc_;
};

}  // namespace deepfm::obs

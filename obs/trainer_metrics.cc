#include "obs/trainer_metrics.h"

namespace deepfm::obs {

namespace {

prometheus::Counter* NewCounter(prometheus::Registry& r, const std::string& name,
                                const std::string& help, const prometheus::Labels& labels) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}

prometheus::Gauge* NewGauge(prometheus::Registry& r, const std::string& name,
                            const std::string& help, const prometheus::Labels& labels) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

}  // namespace

TrainerMetrics::TrainerMetrics(prometheus::Registry& r, const std::string& task)
    : rpc_(r, "deepfm_rpc_client_seconds", "a trainer's RPCs, from send to answer (all shards)",
           {"Pull", "Push"}, {{"task", task}}) {
  const prometheus::Labels l{{"task", task}};
  steps_ = NewCounter(r, "deepfm_worker_steps_total", "training steps computed", l);
  samples_ = NewCounter(r, "deepfm_worker_samples_total", "training samples computed", l);
  step_seconds_ = &prometheus::BuildHistogram()
                       .Name("deepfm_worker_step_seconds")
                       .Help("wall time of one step of the compute stage (wait + compute + handoff)")
                       .Register(r)
                       .Add(l, RpcLatency::Buckets());
  auto& stage = prometheus::BuildCounter()
                    .Name("deepfm_worker_stage_seconds_total")
                    .Help("seconds spent in each stage of the step pipeline")
                    .Register(r);
  auto with = [&](const char* s) {
    prometheus::Labels x = l;
    x["stage"] = s;
    return &stage.Add(x);
  };
  wait_ = with("wait");
  compute_ = with("compute");
  handoff_ = with("handoff");
  read_ = with("read");
  dedup_ = with("dedup");
  pull_ = with("pull");
  push_ = with("push");
  loss_ = NewGauge(r, "deepfm_worker_loss", "loss of the newest step", l);
  samples_per_second_ =
      NewGauge(r, "deepfm_worker_samples_per_second", "samples/s over the last log interval", l);
  global_step_ = NewGauge(r, "deepfm_worker_global_step", "global step after the newest push", l);
  keys_pulled_ = NewCounter(r, "deepfm_worker_keys_pulled_total", "unique keys pulled", l);
  keys_pushed_ = NewCounter(r, "deepfm_worker_keys_pushed_total", "unique keys pushed", l);
  bytes_sent_ = NewCounter(r, "deepfm_worker_bytes_sent_total", "request payload bytes sent", l);
  bytes_received_ =
      NewCounter(r, "deepfm_worker_bytes_received_total", "response payload bytes received", l);
  rows_ = NewCounter(r, "deepfm_data_rows_total", "training rows read", l);
  bad_rows_ = NewCounter(r, "deepfm_data_bad_rows_total", "training lines skipped as bad", l);
}

void TrainerMetrics::Pulled(int64_t rows, int64_t new_bad_rows, uint64_t keys, uint64_t sent,
                            uint64_t received, double read_s, double dedup_s, double pull_s) {
  rows_->Increment(static_cast<double>(rows));
  if (new_bad_rows > 0) bad_rows_->Increment(static_cast<double>(new_bad_rows));
  keys_pulled_->Increment(static_cast<double>(keys));
  bytes_sent_->Increment(static_cast<double>(sent));
  bytes_received_->Increment(static_cast<double>(received));
  read_->Increment(read_s);
  dedup_->Increment(dedup_s);
  pull_->Increment(pull_s);
  rpc_.Observe("Pull", pull_s);
}

void TrainerMetrics::Pushed(uint64_t keys, uint64_t sent, uint64_t received, double push_s,
                            int64_t global_step) {
  keys_pushed_->Increment(static_cast<double>(keys));
  bytes_sent_->Increment(static_cast<double>(sent));
  bytes_received_->Increment(static_cast<double>(received));
  push_->Increment(push_s);
  rpc_.Observe("Push", push_s);
  global_step_->Set(static_cast<double>(global_step));
}

void TrainerMetrics::Stepped(int64_t samples, double loss, double wait_s, double compute_s,
                             double handoff_s) {
  steps_->Increment();
  samples_->Increment(static_cast<double>(samples));
  loss_->Set(loss);
  wait_->Increment(wait_s);
  compute_->Increment(compute_s);
  handoff_->Increment(handoff_s);
  step_seconds_->Observe(wait_s + compute_s + handoff_s);
}

}  // namespace deepfm::obs

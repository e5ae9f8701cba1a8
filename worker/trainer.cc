#include "worker/trainer.h"

#include <glog/logging.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "common/timing.h"
#include "obs/timeline.h"
#include "rpc/job_status.h"
#include "worker/key_dedup.h"
#include "worker/metrics.h"
#include "worker/model_config.h"
#include "worker/pipeline.h"
#include "worker/server_check.h"

namespace deepfm {

// One table's part of a step: its unique keys, where each key of the batch
// went among them, their pulled rows and their gradients.
struct Trainer::TableStep {
  std::vector<uint64_t> uniq;
  std::vector<int32_t> inverse;
  std::vector<float> rows;       // U x row_width, pulled
  std::vector<float> row_grads;  // U x row_width, computed
};

// Everything one step carries between the stages. Objects are recycled
// through the free channel, so steady-state steps allocate nothing.
struct Trainer::Step {
  int64_t index = 0;
  Batch batch;
  std::vector<TableStep> tables;                // per table of the spec
  size_t num_uniq = 0;                          // over every table
  std::vector<std::vector<float>> dense;        // pulled values, per tensor
  std::vector<std::vector<float>> dense_grads;  // computed, per tensor
  float loss = 0;
  // Set on a traced step (--timeline): every stage records into it.
  std::shared_ptr<obs::TraceRecorder> trace;
};

// The stages' shared state. Counters are each written by one stage only
// and read after every stage has joined.
struct Trainer::Pipeline {
  Pipeline(size_t pool, int64_t start_step) : free_steps(pool), ready(2), to_push(1), sync(start_step) {}
  Channel<std::unique_ptr<Step>> free_steps, ready, to_push;
  StepSync sync;
  int64_t start_step = 0;
  int staleness = 0;
  int64_t step_budget = -1;   // local steps to run; -1: until the data ends
  // prefetch stage
  double read_us = 0, dedup_us = 0, pull_us = 0;
  uint64_t pull_bytes = 0;
  WireBytes pull_wire;  // per shard
  int64_t pulls = 0;
  int64_t pulls_ahead = 0;  // pulls sent while an earlier step's push was pending
  // push stage
  double push_us = 0;
  uint64_t push_bytes = 0;
  WireBytes push_wire;
  // compute stage
  double wait_us = 0, compute_us = 0, handoff_us = 0;
};

Trainer::Trainer(const TrainerOptions& options, PsClient* client)
    : options_(options),
      spec_(options.spec ? options.spec : CriteoSpec()),
      client_(client),
      model_(ModelConfigFor(*spec_, options.model)),
      pooling_(*spec_, model_.config().row_width(), model_.kernels()),
      checkpointer_(
          CheckpointerOptions{options.is_chief ? options.checkpoint_dir : std::string(),
                              options.save_steps, options.incremental_save_steps,
                              options.keep_checkpoint_max,
                              options.optimizer_name, options.train_data.batch_size,
                              options.num_workers, options.task_index, options.train_data.files,
                              options.spec ? options.spec : CriteoSpec(),
                              options.reset_data_position, options.log_prefix},
          client) {}

Status Trainer::Setup() {
  tables_.clear();
  Status s = checkpointer_.CheckFeatureSpec();
  if (!s.ok()) return s;
  // Servers that hold another model refuse its registration anyway; this
  // says which flag differs, before anything is registered.
  std::vector<ps::StatsResponse> stats;
  s = client_->Stats(&stats);
  if (!s.ok()) return s;
  ExpectedModel expected;
  expected.spec_name = spec_->name();
  for (const FeatureSpec::TableInfo& t : spec_->tables()) {
    expected.tables.emplace_back(t.name, t.dim + 1);
  }
  for (const DenseTensorSpec& t : DeepFMDenseSpecs(model_.config())) {
    expected.dense.emplace_back(t.name, t.shape);
  }
  s = CheckServersHoldModel(stats, client_->hosts(), expected);
  if (!s.ok()) return s;
  for (const FeatureSpec::TableInfo& t : spec_->tables()) {
    ps::TableSpec spec;
    spec.set_name(t.name);
    spec.set_dim(t.dim + 1);
    spec.set_init_stddev(options_.embedding_init_stddev);
    spec.set_seed(options_.seed);
    int handle = -1;
    s = client_->RegisterTable(spec, &handle);
    if (!s.ok()) return s;
    tables_.push_back(handle);
  }
  model_.InitDense(options_.seed);
  dense_handles_.clear();
  const std::vector<DenseTensorSpec> specs = DeepFMDenseSpecs(model_.config());
  for (size_t i = 0; i < specs.size(); ++i) {
    const DenseTensor& t = model_.dense()[i];
    int h = -1;
    s = client_->RegisterDense(t.name, t.shape, t.values, &h, specs[i].moving_average,
                               specs[i].momentum);
    if (!s.ok()) return s;
    dense_handles_.push_back(h);
  }
  return Status::Ok();
}

std::vector<PsClient::SparsePart> Trainer::Parts(Step* st, bool grads) const {
  std::vector<PsClient::SparsePart> parts(tables_.size());
  for (size_t t = 0; t < tables_.size(); ++t) {
    TableStep& ts = st->tables[t];
    parts[t].table = tables_[t];
    parts[t].keys = ts.uniq.data();
    parts[t].n = ts.uniq.size();
    parts[t].rows = ts.rows.data();
    if (grads) parts[t].grads = ts.row_grads.data();
  }
  return parts;
}

Status Trainer::PullStep(Step* st, const std::vector<float*>& dense_out, WireBytes* bytes) {
  if (options_.emb_fusion) {
    return client_->Pull(Parts(st, false), dense_out, /*read_only=*/false, nullptr, bytes);
  }
  for (const PsClient::SparsePart& part : Parts(st, false)) {
    WireBytes b;
    Status s = client_->Pull({part}, {}, /*read_only=*/false, nullptr, &b);
    if (!s.ok()) return s;
    bytes->Add(b);
  }
  WireBytes b;
  Status s = client_->Pull({}, dense_out, /*read_only=*/false, nullptr, &b);
  bytes->Add(b);
  return s;
}

void Trainer::PoolForward(Step* st, int model_rows) {
  obs::ScopedSpan span("pool");
  std::vector<TableRows<float>> rows(st->tables.size());
  for (size_t t = 0; t < rows.size(); ++t) {
    rows[t].rows = st->tables[t].rows.data();
    rows[t].inverse = st->tables[t].inverse.data();
  }
  pooling_.Forward(st->batch, rows, model_.BeginBatch(model_rows > 0 ? model_rows : st->batch.size));
}

void Trainer::PoolBackward(Step* st) {
  obs::ScopedSpan span("unpool");
  std::vector<TableRows<float>> rows(st->tables.size());
  std::vector<float*> grads(st->tables.size());
  std::vector<size_t> uniq(st->tables.size());
  for (size_t t = 0; t < rows.size(); ++t) {
    TableStep& ts = st->tables[t];
    rows[t].rows = ts.rows.data();
    rows[t].inverse = ts.inverse.data();
    ts.row_grads.resize(ts.rows.size());
    grads[t] = ts.row_grads.data();
    uniq[t] = ts.uniq.size();
  }
  const PooledLayout<float> g = model_.Gradients();
  pooling_.Backward(st->batch, rows, {g.e, g.e_row, g.e_feature, g.w, g.w_row, g.w_feature}, grads,
                    uniq);
}

Status Trainer::Train(TrainResult* result) {
  Status s = TrainSteps(result);
  if (!s.ok()) return s;
  return Finish(result);
}

void Trainer::RunPrefetch(Pipeline* p, BatchReader* reader) {
  const int W = model_.config().row_width();
  const size_t num_dense = model_.dense().size();
  KeyDedup dedup;
  std::vector<float*> dense_out(num_dense);
  int64_t bad_lines_seen = reader->bad_lines();
  for (int64_t i = 0;; ++i) {
    if (p->step_budget >= 0 && i >= p->step_budget) break;
    if (options_.steps > 0 && p->sync.global_step() >= options_.steps) break;
    std::unique_ptr<Step> st;
    if (!p->free_steps.Get(&st)) break;
    if (options_.timeline_every > 0 && (i + 1) % options_.timeline_every == 0) {
      st->trace = std::make_shared<obs::TraceRecorder>(options_.log_prefix);
    }
    obs::TraceScope scope(st->trace.get(), "prefetch");
    // Without staging, nothing of step i happens before step i - 1 is pushed.
    if (!options_.smartstaged && !p->sync.WaitForPushes(i)) break;
    Stopwatch sw;
    {
      obs::ScopedSpan span("read");
      if (!reader->Next(&st->batch)) break;
    }
    const double read_us = sw.Micros();
    sw.Reset();
    {
      obs::ScopedSpan span("dedup");
      st->tables.resize(st->batch.tables.size());
      st->num_uniq = 0;
      for (size_t t = 0; t < st->tables.size(); ++t) {
        const TableKeys& keys = st->batch.tables[t];
        dedup.Run(keys.keys.data(), keys.keys.size(), &st->tables[t].uniq, &st->tables[t].inverse);
        st->num_uniq += st->tables[t].uniq.size();
      }
    }
    const double dedup_us = sw.Micros();
    sw.Reset();
    // Staleness: the pull for step i waits for the pushes of steps < i - staleness.
    if (!p->sync.WaitForPushes(i - p->staleness)) break;
    st->index = i;
    for (TableStep& ts : st->tables) ts.rows.resize(ts.uniq.size() * W);
    for (size_t d = 0; d < num_dense; ++d) dense_out[d] = st->dense[d].data();
    if (p->sync.pushes_done() < i) ++p->pulls_ahead;
    WireBytes bytes;
    Status s;
    {
      obs::ScopedSpan span("pull");
      s = PullStep(st.get(), dense_out, &bytes);
    }
    if (!s.ok()) {
      p->sync.Fail(s);
      break;
    }
    const double pull_us = sw.Micros();
    if (options_.metrics) {
      const int64_t bad = reader->bad_lines();
      options_.metrics->Pulled(st->batch.size, bad - bad_lines_seen, st->num_uniq, bytes.sent,
                               bytes.received, read_us * 1e-6, dedup_us * 1e-6, pull_us * 1e-6);
      bad_lines_seen = bad;
    }
    p->read_us += read_us;
    p->dedup_us += dedup_us;
    p->pull_us += pull_us;
    p->pull_bytes += bytes.sent + bytes.received;
    p->pull_wire.Add(bytes);
    ++p->pulls;
    if (!p->ready.Put(std::move(st))) break;
  }
  p->ready.Close();
}

void Trainer::RunPush(Pipeline* p) {
  const size_t num_dense = model_.dense().size();
  std::vector<const float*> dg(num_dense);
  std::unique_ptr<Step> st;
  while (p->to_push.Get(&st)) {
    Stopwatch sw;
    int64_t step = 0;
    WireBytes bytes;
    Status s;
    {
      // Ends before the step's timeline is written (below).
      obs::TraceScope scope(st->trace.get(), "push");
      obs::ScopedSpan span("push");
      for (size_t d = 0; d < num_dense; ++d) dg[d] = st->dense_grads[d].data();
      ps::DataPosition position;
      ToProto(st->batch.end, &position);
      step = p->sync.global_step() + 1;
      s = client_->Push(Parts(st.get(), true), dg, /*advance_step=*/true, &step, &bytes,
                        &position);
      if (s.ok() && options_.is_chief) {
        obs::ScopedSpan cut("checkpoint");  // a save's cut, when one is due
        checkpointer_.AfterStep(step);
        s = checkpointer_.error();
      }
    }
    if (!s.ok()) {
      p->sync.Fail(s);
      p->to_push.Close();  // the compute stage must not block handing over more work
      break;
    }
    const double push_us = sw.Micros();
    if (options_.metrics) {
      options_.metrics->Pushed(st->num_uniq, bytes.sent, bytes.received, push_us * 1e-6, step);
    }
    p->push_us += push_us;
    p->push_bytes += bytes.sent + bytes.received;
    p->push_wire.Add(bytes);
    p->sync.PushDone(step);
    if (st->trace) WriteTimeline(*st->trace, step);
    st->trace.reset();
    p->free_steps.Put(std::move(st));
  }
  // Unblocks a prefetch stage waiting for a free step after a failure.
  p->free_steps.Close();
}

void Trainer::RunCompute(Pipeline* p, TrainResult* result) {
  const size_t num_dense = model_.dense().size();
  Stopwatch interval;
  double interval_loss = 0;
  int64_t interval_steps = 0, interval_rows = 0;
  int64_t interval_start_gstep = p->start_step;
  double interval_wait_us = 0, interval_compute_us = 0, interval_handoff_us = 0;
  std::unique_ptr<Step> st;
  while (true) {
    Stopwatch sw;
    if (!p->ready.Get(&st)) break;
    const double wait_us = sw.Micros();
    p->wait_us += wait_us;
    sw.Reset();
    const Batch& b = st->batch;
    {
      // Ends before the step goes to the push stage, which writes its timeline.
      obs::TraceScope scope(st->trace.get(), "compute");
      obs::ScopedSpan span("compute");
      for (size_t d = 0; d < num_dense; ++d) std::swap(model_.dense()[d].values, st->dense[d]);
      PoolForward(st.get());
      st->loss = model_.ForwardBackwardFilled(b.size, b.dense.data(), b.labels.data());
      PoolBackward(st.get());
      for (size_t d = 0; d < num_dense; ++d) std::swap(model_.dense()[d].grads, st->dense_grads[d]);
    }
    const double compute_us = sw.Micros();
    p->compute_us += compute_us;
    if (!std::isfinite(st->loss)) {
      p->sync.Fail(Internal("loss became " + std::to_string(st->loss) + " at local step " +
                            std::to_string(st->index) + "; lower --learning_rate"));
      break;
    }
    result->losses.push_back(st->loss);
    result->rows += b.size;
    interval_loss += st->loss;
    interval_rows += b.size;
    ++interval_steps;
    ++result->local_steps;
    if (options_.progress) {
      options_.progress->local_step.store(result->local_steps, std::memory_order_relaxed);
      options_.progress->last_loss.store(st->loss, std::memory_order_relaxed);
      options_.progress->Advance();
    }
    sw.Reset();
    const int samples = b.size;
    const float loss = st->loss;
    if (!p->to_push.Put(std::move(st))) break;
    const double handoff_us = sw.Micros();
    p->handoff_us += handoff_us;
    if (options_.metrics) {
      options_.metrics->Stepped(samples, loss, wait_us * 1e-6, compute_us * 1e-6,
                                handoff_us * 1e-6);
    }
    if (options_.log_every > 0 && result->local_steps % options_.log_every == 0) {
      const int64_t gstep = p->sync.global_step();
      const double secs = interval.Seconds();
      result->last_loss = interval_loss / interval_steps;
      printf("%s step %lld global_step %lld loss %.5f global_step/sec %.2f samples/sec %.0f\n",
             options_.log_prefix.c_str(), static_cast<long long>(result->local_steps),
             static_cast<long long>(gstep), result->last_loss,
             (gstep - interval_start_gstep) / secs, interval_rows / secs);
      fflush(stdout);
      if (options_.metrics) options_.metrics->Rate(interval_rows / secs);
      if (options_.on_interval) {
        IntervalReport r;
        r.local_step = result->local_steps;
        r.global_step = gstep;
        r.loss = result->last_loss;
        r.global_steps_per_sec = (gstep - interval_start_gstep) / secs;
        r.samples_per_sec = interval_rows / secs;
        r.wait_us = (p->wait_us - interval_wait_us) / interval_steps;
        r.compute_us = (p->compute_us - interval_compute_us) / interval_steps;
        r.handoff_us = (p->handoff_us - interval_handoff_us) / interval_steps;
        options_.on_interval(r);
      }
      interval_wait_us = p->wait_us;
      interval_compute_us = p->compute_us;
      interval_handoff_us = p->handoff_us;
      interval.Reset();
      interval_loss = 0;
      interval_steps = interval_rows = 0;
      interval_start_gstep = gstep;
    }
  }
  if (interval_steps > 0) result->last_loss = interval_loss / interval_steps;
}

Status Trainer::TrainSteps(TrainResult* result) {
  *result = TrainResult();
  const size_t num_dense = model_.dense().size();
  ReaderOptions data = options_.train_data;
  data.spec = spec_;
  int64_t restored_step = 0;
  Status s = checkpointer_.ResumePosition(&data.start, &restored_step);
  if (!s.ok()) return s;
  result->start = data.start;
  int64_t start_step = 0;
  s = client_->GlobalStep(&start_step);
  if (!s.ok()) return s;
  if (options_.steps > 0 && start_step >= options_.steps) {
    LOG(INFO) << options_.log_prefix << " global step " << start_step << " already >= --steps "
              << options_.steps << "; nothing to train";
    result->global_step = start_step;
    return Status::Ok();
  }
  Progress(ps::TRAINING);
  BatchReader reader(data);
  s = reader.Start();
  if (!s.ok()) return s;

  const int staleness = std::max(0, options_.staleness);
  const size_t pool_size = staleness + 4;
  Pipeline p(pool_size, start_step);
  p.start_step = start_step;
  p.staleness = staleness;
  p.step_budget = options_.steps > 0 ? options_.steps - start_step : -1;
  for (size_t i = 0; i < pool_size; ++i) {
    auto st = std::make_unique<Step>();
    st->dense.resize(num_dense);
    st->dense_grads.resize(num_dense);
    for (size_t d = 0; d < num_dense; ++d) {
      st->dense[d].resize(model_.dense()[d].values.size());
      st->dense_grads[d].resize(model_.dense()[d].grads.size());
    }
    p.free_steps.Put(std::move(st));
  }

  Stopwatch wall;
  std::thread prefetch([&] { RunPrefetch(&p, &reader); });
  std::thread pusher([&] { RunPush(&p); });
  RunCompute(&p, result);
  // Shutdown, in one place: stop every stage, let the push stage hand over
  // what it holds, then unblock the prefetch stage wherever it waits.
  p.sync.Stop();
  p.to_push.Close();
  pusher.join();
  p.ready.Close();
  p.free_steps.Close();
  reader.Stop();
  prefetch.join();
  result->seconds = wall.Seconds();
  result->bad_lines = reader.bad_lines();
  result->global_step = p.sync.global_step();
  result->pulls_ahead_of_push = p.pulls_ahead;
  const double n = std::max<int64_t>(1, result->local_steps);
  const double np = std::max<int64_t>(1, p.pulls);
  const double npush = std::max<int64_t>(1, p.sync.pushes_done());
  StepSplit& split = result->split;
  split.wait_us = p.wait_us / n;
  split.compute_us = p.compute_us / n;
  split.handoff_us = p.handoff_us / n;
  split.read_us = p.read_us / np;
  split.dedup_us = p.dedup_us / np;
  split.pull_us = p.pull_us / np;
  split.pull_bytes = static_cast<uint64_t>(p.pull_bytes / np);
  split.push_us = p.push_us / npush;
  split.push_bytes = static_cast<uint64_t>(p.push_bytes / npush);
  const size_t shards = static_cast<size_t>(client_->num_shards());
  split.shard_bytes.assign(shards, 0);
  split.shard_dense_bytes.assign(shards, 0);
  for (size_t i = 0; i < shards; ++i) {
    auto at = [i](const std::vector<uint64_t>& v) -> double { return i < v.size() ? v[i] : 0; };
    split.shard_bytes[i] =
        static_cast<uint64_t>(at(p.pull_wire.shard) / np + at(p.push_wire.shard) / npush);
    split.shard_dense_bytes[i] = static_cast<uint64_t>(at(p.pull_wire.shard_dense) / np +
                                                       at(p.push_wire.shard_dense) / npush);
  }
  s = p.sync.error();
  if (!s.ok()) return s;
  return reader.status();
}

void Trainer::WriteTimeline(const obs::TraceRecorder& trace, int64_t global_step) {
  const std::string path =
      (std::filesystem::path(options_.timeline_dir) / ("timeline-" + std::to_string(global_step) +
                                                       ".json"))
          .string();
  // A timeline is worth a warning, never a failed job.
  const Status s = trace.WriteChromeTrace(path);
  if (!s.ok()) LOG(WARNING) << options_.log_prefix << ": --timeline: " << s.message();
}

void Trainer::Progress(ps::WorkerPhase phase) {
  if (options_.progress) options_.progress->Enter(phase);
}

Status Trainer::Finish(TrainResult* result) {
  // Every worker reports that it is done; the chief waits for all of them,
  // so its final checkpoint and its evaluation see every worker's updates.
  uint32_t done = 0;
  Status s = client_->WorkerDone(static_cast<uint32_t>(options_.task_index), &done);
  if (!s.ok()) return s;
  if (!options_.is_chief) return Status::Ok();
  Progress(ps::WAITING);
  s = WaitForOtherTrainers();
  if (!s.ok()) return s;
  s = client_->GlobalStep(&result->global_step);
  if (!s.ok()) return s;
  Progress(ps::SAVING);
  s = checkpointer_.SaveNow();
  result->saves = checkpointer_.saves();
  return s;
}

Status Trainer::WaitForOtherTrainers() {
  Stopwatch waiting;
  while (true) {
    ps::JobStatusResponse status;
    Status s = client_->JobStatus(&status);
    if (!s.ok()) return s;
    uint32_t done = 0;
    for (const ps::WorkerStatus& w : status.workers()) done += w.done();
    if (done >= static_cast<uint32_t>(options_.num_workers)) return Status::Ok();
    // A shard that does not know the job's size lists only the trainers it
    // heard from; the others count as silent since this wait began.
    for (int i = status.workers_size(); i < options_.num_workers; ++i) {
      ps::WorkerStatus* w = status.add_workers();
      w->set_task_index(static_cast<uint32_t>(i));
      w->set_seconds_since_heartbeat(waiting.Seconds());
      w->set_seconds_since_progress(waiting.Seconds());
    }
    // A trainer that died or hangs would keep the chief waiting forever.
    const rpc::StuckTrainer stuck = rpc::FindStuckTrainer(status, options_.hang_timeout_s);
    if (stuck.found()) {
      return Status(Code::kUnavailable, "the chief gave up waiting for the other trainers after " +
                                            std::to_string(static_cast<int>(waiting.Seconds())) + " s: " +
                                            stuck.why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status Trainer::Evaluate(const ReaderOptions& data, EvalResult* result) {
  *result = EvalResult();
  Stopwatch wall;
  Progress(ps::EVALUATING);
  const int W = model_.config().row_width();
  const size_t num_dense = model_.dense().size();
  // Dense weights do not change during evaluation: pull them once.
  std::vector<float*> dense_out(num_dense);
  for (size_t d = 0; d < num_dense; ++d) dense_out[d] = model_.dense()[d].values.data();
  Status s = client_->Pull(std::vector<PsClient::SparsePart>(), dense_out, true, nullptr);
  if (!s.ok()) return s;
  ReaderOptions eval_data = data;
  eval_data.spec = spec_;
  BatchReader reader(eval_data);
  s = reader.Start();
  if (!s.ok()) return s;
  KeyDedup dedup;
  Step st;
  std::vector<float> probs;
  const std::vector<float*> no_dense;
  EvalAccumulator acc;
  while (reader.Next(&st.batch)) {
    st.tables.resize(st.batch.tables.size());
    for (size_t t = 0; t < st.tables.size(); ++t) {
      TableStep& ts = st.tables[t];
      dedup.Run(st.batch.tables[t].keys.data(), st.batch.tables[t].keys.size(), &ts.uniq,
                &ts.inverse);
      ts.rows.resize(ts.uniq.size() * W);
    }
    s = client_->Pull(Parts(&st, false), no_dense, true, nullptr);
    if (!s.ok()) {
      reader.Stop();
      return s;
    }
    // Scored row by row alike, as `deepfm predict` and `deepfm serve` score.
    PoolForward(&st, DeepFMModel::PredictRows(st.batch.size));
    probs.resize(st.batch.size);
    model_.PredictRowsFilled(st.batch.size, st.batch.dense.data(), probs.data());
    acc.Add(probs.data(), st.batch.labels.data(), st.batch.size);
    if (options_.progress) options_.progress->Advance();
  }
  s = reader.status();
  if (!s.ok()) return s;
  result->rows = acc.count();
  result->bad_lines = reader.bad_lines();
  result->auc = acc.Auc();
  result->logloss = acc.LogLoss();
  result->accuracy = acc.Accuracy();
  result->seconds = wall.Seconds();
  return Status::Ok();
}

}  // namespace deepfm

#include "worker/trainer.h"

#include <glog/logging.h>

#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include <filesystem>

#include "common/checkpoint_manifest.h"
#include "common/timing.h"
#include "rpc/job_status.h"
#include "worker/key_dedup.h"
#include "worker/metrics.h"

namespace deepfm {
namespace {

// Everything one step carries between the pipeline's threads. Objects are
// recycled through a pool, so steady-state steps allocate nothing.
struct Step {
  int64_t index = 0;
  Batch batch;
  std::vector<uint64_t> uniq;
  std::vector<int32_t> inverse;
  std::vector<float> rows;                      // U x row_width, pulled
  std::vector<float> row_grads;                 // U x row_width, computed
  std::vector<std::vector<float>> dense;        // pulled values, per tensor
  std::vector<std::vector<float>> dense_grads;  // computed, per tensor
  float loss = 0;
};

// A small blocking queue; Close() wakes every waiter.
template <typename T>
class Channel {
 public:
  explicit Channel(size_t capacity) : capacity_(capacity) {}
  bool Put(T v) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return closed_ || q_.size() < capacity_; });
    if (closed_) return false;
    q_.push_back(std::move(v));
    cv_.notify_all();
    return true;
  }
  bool Get(T* v) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return closed_ || !q_.empty(); });
    if (q_.empty()) return false;
    *v = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> q_;
  bool closed_ = false;
};

// First error wins; later ones are dropped (they are usually consequences).
class ErrorSlot {
 public:
  void Set(const Status& s) {
    std::lock_guard<std::mutex> l(mu_);
    if (status_.ok() && !s.ok()) status_ = s;
  }
  Status Get() {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }
  bool failed() {
    std::lock_guard<std::mutex> l(mu_);
    return !status_.ok();
  }

 private:
  std::mutex mu_;
  Status status_;
};

}  // namespace

Trainer::Trainer(const TrainerOptions& options, PsClient* client)
    : options_(options), client_(client), model_(options.model) {}

Status Trainer::Setup() {
  ps::TableSpec spec;
  spec.set_name(options_.table_name);
  spec.set_dim(options_.model.row_width());
  spec.set_init_stddev(options_.embedding_init_stddev);
  spec.set_seed(options_.seed);
  Status s = client_->RegisterTable(spec, &table_);
  if (!s.ok()) return s;
  model_.InitDense(options_.seed);
  dense_handles_.clear();
  for (const DenseTensor& t : model_.dense()) {
    int h = -1;
    s = client_->RegisterDense(t.name, t.shape, t.values, &h);
    if (!s.ok()) return s;
    dense_handles_.push_back(h);
  }
  return Status::Ok();
}

Status Trainer::Train(TrainResult* result) {
  Status s = TrainSteps(result);
  if (!s.ok()) return s;
  return Finish(result);
}

Status Trainer::TrainSteps(TrainResult* result) {
  *result = TrainResult();
  const int W = options_.model.row_width();
  const size_t num_dense = model_.dense().size();
  int64_t start_step = 0;
  Status s = client_->GlobalStep(&start_step);
  if (!s.ok()) return s;
  if (options_.steps > 0 && start_step >= options_.steps) {
    LOG(INFO) << options_.log_prefix << " global step " << start_step << " already >= --steps "
              << options_.steps << "; nothing to train";
    result->global_step = start_step;
    last_saved_ = start_step;
    return Status::Ok();
  }
  Progress(ps::TRAINING);

  BatchReader reader(options_.train_data);
  s = reader.Start();
  if (!s.ok()) return s;
  // Resuming from a checkpoint: skip the batches this worker already trained
  // on, so a resumed single-worker job sees exactly the data the
  // uninterrupted one would (with N workers each skips step / N batches).
  // The position comes from the step the shards restored, not the live
  // global step, which other workers of a fresh job may already have moved.
  std::vector<ps::StatsResponse> stats;
  s = client_->Stats(&stats);
  if (!s.ok()) return s;
  const int64_t restored_step = stats[0].restored_global_step();
  if (restored_step > 0) {
    Batch skipped;
    const int64_t skip = restored_step / std::max(1, options_.num_workers);
    for (int64_t i = 0; i < skip; ++i) {
      if (!reader.Next(&skipped)) break;
    }
    LOG(INFO) << options_.log_prefix << " resuming at global step " << restored_step << ", skipped "
              << skip << " batches of this worker's data";
  }
  int64_t last_saved = start_step;

  const int staleness = std::max(0, options_.staleness);
  const size_t pool_size = staleness + 4;
  Channel<std::unique_ptr<Step>> free_steps(pool_size), ready(2), to_push(1);
  for (size_t i = 0; i < pool_size; ++i) {
    auto st = std::make_unique<Step>();
    st->dense.resize(num_dense);
    st->dense_grads.resize(num_dense);
    for (size_t d = 0; d < num_dense; ++d) {
      st->dense[d].resize(model_.dense()[d].values.size());
      st->dense_grads[d].resize(model_.dense()[d].grads.size());
    }
    free_steps.Put(std::move(st));
  }

  ErrorSlot error;
  std::mutex push_mu;
  std::condition_variable push_cv;
  int64_t pushes_done = 0;                 // local steps whose push was applied
  int64_t known_global_step = start_step;  // guarded by push_mu
  int64_t pulls_issued = 0;
  bool stopping = false;                    // guarded by push_mu
  StepSplit split;                          // prefetch/push parts, guarded by push_mu
  const int64_t step_budget = options_.steps > 0 ? options_.steps - start_step : -1;

  std::thread prefetch([&] {
    KeyDedup dedup;
    std::vector<float*> dense_out(num_dense);
    for (int64_t i = 0;; ++i) {
      if (step_budget >= 0 && i >= step_budget) break;
      {
        std::lock_guard<std::mutex> l(push_mu);
        if (options_.steps > 0 && known_global_step >= options_.steps) break;
      }
      std::unique_ptr<Step> st;
      if (!free_steps.Get(&st)) break;
      Stopwatch sw;
      if (!reader.Next(&st->batch)) break;
      const double read_us = sw.Micros();
      sw.Reset();
      dedup.Run(st->batch.keys.data(), st->batch.keys.size(), &st->uniq, &st->inverse);
      const double dedup_us = sw.Micros();
      sw.Reset();
      bool stop_now;
      {
        std::unique_lock<std::mutex> l(push_mu);
        push_cv.wait(l, [&] { return pushes_done >= i - staleness || stopping || error.failed(); });
        stop_now = stopping || error.failed();
      }
      if (stop_now) break;
      st->index = i;
      st->rows.resize(st->uniq.size() * W);
      for (size_t d = 0; d < num_dense; ++d) dense_out[d] = st->dense[d].data();
      WireBytes bytes;
      Status ps = client_->Pull(table_, st->uniq.data(), st->uniq.size(), st->rows.data(),
                                dense_out, /*read_only=*/false, nullptr, &bytes);
      if (!ps.ok()) {
        error.Set(ps);
        break;
      }
      {
        std::lock_guard<std::mutex> l(push_mu);
        split.read_us += read_us;
        split.dedup_us += dedup_us;
        split.pull_us += sw.Micros();
        split.pull_bytes += bytes.sent + bytes.received;
        ++pulls_issued;
      }
      if (!ready.Put(std::move(st))) break;
    }
    ready.Close();
  });

  std::thread pusher([&] {
    std::unique_ptr<Step> st;
    while (to_push.Get(&st)) {
      Stopwatch sw;
      std::vector<const float*> dg(num_dense);
      for (size_t d = 0; d < num_dense; ++d) dg[d] = st->dense_grads[d].data();
      int64_t step;
      {
        std::lock_guard<std::mutex> l(push_mu);
        step = known_global_step + 1;
      }
      WireBytes bytes;
      Status ps = client_->Push(table_, st->uniq.data(), st->uniq.size(), st->row_grads.data(), dg,
                                /*advance_step=*/true, &step, &bytes);
      {
        std::lock_guard<std::mutex> l(push_mu);
        if (ps.ok()) {
          known_global_step = std::max(known_global_step, step);
          split.push_us += sw.Micros();
          split.push_bytes += bytes.sent + bytes.received;
        }
      }
      // The chief saves between its own pushes, so no push of its is in flight
      // (with staleness 0 the next pull also waits for the save).
      if (ps.ok() && options_.is_chief && options_.save_steps > 0 &&
          !options_.checkpoint_dir.empty() &&
          step / options_.save_steps > last_saved / options_.save_steps) {
        ps = SaveCheckpoint(step);
        last_saved = step;
      }
      {
        std::lock_guard<std::mutex> l(push_mu);
        if (ps.ok()) ++pushes_done;
        push_cv.notify_all();
      }
      if (!ps.ok()) {
        error.Set(ps);
        to_push.Close();  // the main thread must not block handing over more work
        break;
      }
      free_steps.Put(std::move(st));
    }
    // Unblock a prefetcher waiting for a free step after a failure.
    free_steps.Close();
  });

  Stopwatch wall;
  Stopwatch interval;
  double interval_loss = 0;
  int64_t interval_steps = 0, interval_rows = 0;
  int64_t interval_start_gstep = start_step;
  double wait_us = 0, compute_us = 0, handoff_us = 0;
  std::unique_ptr<Step> st;
  while (true) {
    Stopwatch sw;
    if (!ready.Get(&st)) break;
    wait_us += sw.Micros();
    sw.Reset();
    for (size_t d = 0; d < num_dense; ++d) {
      std::swap(model_.dense()[d].values, st->dense[d]);
    }
    const Batch& b = st->batch;
    st->row_grads.resize(st->rows.size());
    st->loss = model_.ForwardBackward(b.size, b.dense.data(), st->rows.data(),
                                      static_cast<int>(st->uniq.size()), st->inverse.data(),
                                      b.labels.data(), st->row_grads.data());
    for (size_t d = 0; d < num_dense; ++d) std::swap(model_.dense()[d].grads, st->dense_grads[d]);
    compute_us += sw.Micros();
    if (!std::isfinite(st->loss)) {
      error.Set(Internal("loss became " + std::to_string(st->loss) + " at local step " +
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
      options_.progress->Advance();
    }
    sw.Reset();
    if (!to_push.Put(std::move(st))) break;
    handoff_us += sw.Micros();
    if (options_.log_every > 0 && result->local_steps % options_.log_every == 0) {
      int64_t gstep;
      {
        std::lock_guard<std::mutex> l(push_mu);
        gstep = known_global_step;
      }
      const double secs = interval.Seconds();
      result->last_loss = interval_loss / interval_steps;
      printf("%s step %lld global_step %lld loss %.5f global_step/sec %.2f samples/sec %.0f\n",
             options_.log_prefix.c_str(), static_cast<long long>(result->local_steps),
             static_cast<long long>(gstep), result->last_loss,
             (gstep - interval_start_gstep) / secs, interval_rows / secs);
      fflush(stdout);
      interval.Reset();
      interval_loss = 0;
      interval_steps = interval_rows = 0;
      interval_start_gstep = gstep;
    }
  }
  if (interval_steps > 0) result->last_loss = interval_loss / interval_steps;
  {
    std::lock_guard<std::mutex> l(push_mu);
    stopping = true;
    push_cv.notify_all();
  }
  to_push.Close();
  pusher.join();
  ready.Close();
  free_steps.Close();
  reader.Stop();
  prefetch.join();
  result->seconds = wall.Seconds();
  result->bad_lines = reader.bad_lines();
  {
    std::lock_guard<std::mutex> l(push_mu);
    result->global_step = known_global_step;
    const double n = std::max<int64_t>(1, result->local_steps);
    const double np = std::max<int64_t>(1, pulls_issued);
    split.wait_us = wait_us / n;
    split.compute_us = compute_us / n;
    split.handoff_us = handoff_us / n;
    split.read_us /= np;
    split.dedup_us /= np;
    split.pull_us /= np;
    split.pull_bytes /= np;
    split.push_us /= std::max<int64_t>(1, pushes_done);
    split.push_bytes /= std::max<int64_t>(1, pushes_done);
    result->split = split;
  }
  Status es = error.Get();
  if (!es.ok()) return es;
  s = reader.status();
  if (!s.ok()) return s;
  last_saved_ = last_saved;
  return Status::Ok();
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
  if (!options_.checkpoint_dir.empty() && result->global_step > last_saved_) {
    return SaveCheckpoint(result->global_step);
  }
  return Status::Ok();
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

Status Trainer::SaveCheckpoint(int64_t global_step) {
  namespace fs = std::filesystem;
  Stopwatch sw;
  const ps::WorkerPhase was = options_.progress
                                  ? static_cast<ps::WorkerPhase>(options_.progress->phase.load())
                                  : ps::TRAINING;
  Progress(ps::SAVING);
  // The shards write into <their checkpoint root>/<name>, which is this
  // folder on the filesystem every task shares; the chief then commits it.
  const std::string name = CheckpointFolderName(global_step) + ".tmp";
  const fs::path tmp = fs::path(options_.checkpoint_dir) / name;
  std::error_code ec;
  fs::remove_all(tmp, ec);  // a crashed save's leftovers
  Manifest m;
  m.global_step = global_step;
  m.num_shards = client_->num_shards();
  m.num_slots = client_->router().num_slots();
  m.optimizer = options_.optimizer_name;
  m.batch_size = options_.train_data.batch_size;
  m.num_workers = options_.num_workers;
  uint64_t rows = 0;
  Status s = client_->Save(name, global_step, &m.files, &rows);
  if (!s.ok()) return s;
  s = CommitCheckpoint(options_.checkpoint_dir, tmp.string(), m, options_.keep_checkpoint_max);
  if (!s.ok()) return s;
  Progress(was);
  printf("%s saved checkpoint %s/%s: %llu rows, %.2f s\n", options_.log_prefix.c_str(),
         options_.checkpoint_dir.c_str(), CheckpointFolderName(global_step).c_str(),
         static_cast<unsigned long long>(rows), sw.Seconds());
  fflush(stdout);
  return Status::Ok();
}

Status Trainer::Evaluate(const ReaderOptions& data, EvalResult* result) {
  *result = EvalResult();
  Stopwatch wall;
  Progress(ps::EVALUATING);
  const int W = options_.model.row_width();
  const size_t num_dense = model_.dense().size();
  // Dense weights do not change during evaluation: pull them once.
  std::vector<float*> dense_out(num_dense);
  for (size_t d = 0; d < num_dense; ++d) dense_out[d] = model_.dense()[d].values.data();
  Status s = client_->Pull(table_, nullptr, 0, nullptr, dense_out, true, nullptr);
  if (!s.ok()) return s;
  BatchReader reader(data);
  s = reader.Start();
  if (!s.ok()) return s;
  KeyDedup dedup;
  Batch batch;
  std::vector<uint64_t> uniq;
  std::vector<int32_t> inverse;
  std::vector<float> rows, probs;
  const std::vector<float*> no_dense;
  EvalAccumulator acc;
  while (reader.Next(&batch)) {
    dedup.Run(batch.keys.data(), batch.keys.size(), &uniq, &inverse);
    rows.resize(uniq.size() * W);
    s = client_->Pull(table_, uniq.data(), uniq.size(), rows.data(), no_dense, true, nullptr);
    if (!s.ok()) {
      reader.Stop();
      return s;
    }
    probs.resize(batch.size);
    model_.Predict(batch.size, batch.dense.data(), rows.data(), static_cast<int>(uniq.size()),
                   inverse.data(), probs.data());
    acc.Add(probs.data(), batch.labels.data(), batch.size);
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

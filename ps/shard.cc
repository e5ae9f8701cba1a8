#include "ps/shard.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/bytes.h"
#include "common/process_memory.h"
#include "common/timing.h"
#include "common/wire_values.h"
#include "obs/timeline.h"

namespace deepfm::ps {

namespace {

// A call the trainer traces (--timeline): this shard's spans of it, on the
// "requests" track, go back in the response. Untraced calls pay one branch.
template <class Response>
class CallTrace {
 public:
  CallTrace(bool on, const char* name, Response* resp) : name_(name), resp_(resp) {
    if (!on) return;
    recorder_ = std::make_unique<obs::TraceRecorder>("");
    scope_.emplace(recorder_.get(), "requests");
    start_us_ = obs::WallMicros();
  }
  ~CallTrace() {
    if (!recorder_) return;
    recorder_->Add("requests", name_, start_us_, obs::WallMicros());
    recorder_->CopyTo(resp_->mutable_trace());
  }

 private:
  std::unique_ptr<obs::TraceRecorder> recorder_;
  std::optional<obs::TraceScope> scope_;  // only on a traced call: no thread-local writes otherwise
  const char* name_;
  Response* resp_;
  int64_t start_us_ = 0;
};

size_t ElemSize(DType t) { return WireElemSize(t == BF16); }

// Writes n floats to `bytes` as `dtype`.
void Encode(const float* values, size_t n, DType dtype, std::string* bytes) {
  bytes->resize(n * ElemSize(dtype));
  EncodeWireValues(values, n, dtype == BF16, bytes->data());
}

}  // namespace

std::unique_ptr<Shard> Shard::Create(const ShardOptions& options, Status* status) {
  std::unique_ptr<Optimizer> opt;
  *status = MakeOptimizer(options.optimizer, &opt);
  if (!status->ok()) return nullptr;
  if (options.num_shards == 0 || options.shard_index >= options.num_shards) {
    *status = InvalidArgument("shard_index " + std::to_string(options.shard_index) +
                              " must be < num_shards " + std::to_string(options.num_shards));
    return nullptr;
  }
  if (options.num_slots < options.num_shards) {
    *status = InvalidArgument("num_slots " + std::to_string(options.num_slots) +
                              " must be >= num_shards " + std::to_string(options.num_shards));
    return nullptr;
  }
  *status = ValidateEvPolicy(options.ev);
  if (!status->ok()) return nullptr;
  if (options.memory_budget_bytes < 0) {
    *status = InvalidArgument("--ps_memory_budget_mb must be >= 0");
    return nullptr;
  }
  return std::unique_ptr<Shard>(new Shard(options, std::move(opt)));
}

Shard::Shard(const ShardOptions& options, std::unique_ptr<Optimizer> opt)
    : options_(options),
      router_(options.num_shards, options.num_slots),
      optimizer_(std::move(opt)),
      dense_(optimizer_.get()),
      coordinator_(options.num_trainers),
      gate_(
          options.shard_index == 0, [this](int64_t step) { TakeSnapshot(step); },
          std::chrono::milliseconds(options.cut_wait_ms)),
      push_decoder_([this](uint32_t id) { return table(id); }, &dense_, options.num_trainers,
                    [this](const std::vector<uint64_t>& keys, const std::string& name) {
                      return CheckKeysOwned(keys, "push", name);
                    }),
      snapshot_(options.shard_index, options.snapshot_ttl_ms) {
  if (options_.memory_budget_bytes > 0)
    budget_ = std::make_unique<MemoryBudget>(options_.memory_budget_bytes);
  if (options_.background_sweeps && (options_.ev.sweeps() || budget_)) {
    sweeper_ = std::make_unique<Sweeper>([this](bool forced) { SweepNow(forced); },
                                         std::chrono::milliseconds(20));
  }
}

Shard::~Shard() { sweeper_.reset(); }

uint64_t Shard::SweepNow(bool force_policy_sweep) {
  const int64_t step = global_step();
  bool policy = false;
  {
    std::lock_guard<std::mutex> lock(sweep_mu_);
    if (options_.ev.sweeps() && (force_policy_sweep || step >= next_sweep_step_)) {
      policy = true;
      next_sweep_step_ = step + options_.ev.evict_interval_steps;
    }
  }
  uint64_t dropped = 0;
  if (policy) {
    SweepRule rule;
    rule.ttl = rule.l2 = true;
    double hold = 0;
    for (EmbeddingTable* t : tables()) dropped += t->Sweep(step, rule, &hold);
    NoteSweepHold(hold);
  }
  if (budget_) dropped += BudgetSweep();
  return dropped;
}

uint64_t Shard::BudgetSweep() {
  const int64_t limit = budget_->limit();
  const std::vector<EmbeddingTable*> tabs = tables();
  auto spare_room = [&] {
    int64_t spare = limit - budget_->used();
    for (EmbeddingTable* t : tabs) spare += static_cast<int64_t>(t->SpareBytes());
    return spare;
  };
  int64_t spare = spare_room();
  if (spare >= limit / 50) return 0;
  // The counter filter's counts of keys not sighted since the last shed go
  // first: such a key has no row and was not pushed for longer than any
  // row the sweep would drop next.
  if (options_.ev.filter == FilterKind::kCounter) {
    for (EmbeddingTable* t : tabs) t->ShedPendingCounts();
    spare = spare_room();
    if (spare >= limit / 20) return 0;
  }
  int64_t row_bytes = 0;
  for (EmbeddingTable* t : tabs) row_bytes += static_cast<int64_t>(t->size() * t->record_bytes());
  if (row_bytes == 0) return 0;
  // Free enough rows to bring spare room to 5 % of the budget.
  const double fraction = std::min(1.0, static_cast<double>(limit / 20 - spare) / row_bytes);
  std::vector<uint64_t> values;
  for (EmbeddingTable* t : tabs) t->SampleBudgetValues(16, &values);
  if (values.empty()) return 0;
  const size_t at = std::min(values.size() - 1, static_cast<size_t>(fraction * values.size()));
  std::nth_element(values.begin(), values.begin() + at, values.end());
  SweepRule rule;
  rule.below_value = std::max<uint64_t>(1, values[at]);
  const int64_t step = global_step();
  uint64_t dropped = 0;
  double hold = 0;
  for (EmbeddingTable* t : tabs) dropped += t->Sweep(step, rule, &hold);
  NoteSweepHold(hold);
  return dropped;
}

void Shard::NoteSweepHold(double ms) {
  sweeps_.fetch_add(1, std::memory_order_relaxed);
  double was = longest_sweep_hold_ms_.load();
  while (ms > was && !longest_sweep_hold_ms_.compare_exchange_weak(was, ms)) {
  }
}

void Shard::SaveWritten(int64_t step, int64_t since_step) {
  if (options_.track_evictions) {
    for (EmbeddingTable* t : tables()) t->TrimEvicted(since_step >= 0 ? since_step : step);
  }
  if (sweeper_) sweeper_->Request();
}

Status Shard::CheckKeysOwned(const std::vector<uint64_t>& keys, const char* rpc,
                             const std::string& table) const {
  if (options_.num_shards == 1) return Status::Ok();  // every slot is shard 0's
  const uint32_t me = options_.shard_index;
  for (uint64_t key : keys) {
    const uint32_t slot = router_.SlotOfKey(key);
    const uint32_t owner = router_.ShardOfSlot(slot);
    if (owner == me) continue;
    char hex[24];
    snprintf(hex, sizeof(hex), "0x%016llx", static_cast<unsigned long long>(key));
    return FailedPrecondition(
        std::string(rpc) + ": table '" + table + "': key " + hex + " is in slot " +
        std::to_string(slot) + ", which shard " + std::to_string(owner) + " owns, not this shard " +
        std::to_string(me) + " (" + std::to_string(options_.num_shards) + " shards, " +
        std::to_string(options_.num_slots) +
        " slots): the client routes keys differently from the servers; give every worker the "
        "job's full shard list, in shard order, and run one build everywhere");
  }
  return Status::Ok();
}

EmbeddingTable* Shard::table(uint32_t id) const {
  std::shared_lock<std::shared_mutex> lock(tables_mu_);
  return id < tables_.size() ? tables_[id].get() : nullptr;
}

std::vector<EmbeddingTable*> Shard::tables() const {
  std::shared_lock<std::shared_mutex> lock(tables_mu_);
  std::vector<EmbeddingTable*> out;
  for (const auto& t : tables_) out.push_back(t.get());
  return out;
}

void Shard::TakeSnapshot(int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  auto snap = std::make_shared<ShardSnapshot>();
  snap->step = step;
  for (EmbeddingTable* t : tables()) {
    const uint64_t generation = t->BeginSnapshot(step);
    snap->tables.push_back({t, generation, t->snapshot_opt_state()});
  }
  dense_.ForEach([&](uint32_t, const DenseVariable& v) {
    snap->dense.push_back({v.name, v.shape, v.offset, v.values, v.slots, v.opt_state, v.update});
  });
  {
    std::lock_guard<std::mutex> lock(positions_mu_);
    for (const auto& [task, tp] : positions_) snap->positions.push_back(tp);
  }
  snap->copy_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  snapshot_.Hold(std::move(snap));
}

Status Shard::Cut(const CutRequest& req, CutResponse* resp) {
  CallTrace<CutResponse> trace(req.trace(), "Cut (pushes held)", resp);
  return Cut(resp);
}

Status Shard::Cut(CutResponse* resp) {
  if (options_.shard_index != 0) {
    return FailedPrecondition("cut: only shard 0 numbers the steps; this is shard " +
                              std::to_string(options_.shard_index));
  }
  resp->set_global_step(gate_.CutNow());
  return Status::Ok();
}

Status Shard::AwaitSnapshot(int64_t step, std::chrono::milliseconds wait, bool force,
                            std::shared_ptr<const ShardSnapshot>* out) {
  if ((*out = snapshot_.At(step))) return Status::Ok();
  if (force) {
    gate_.ForceCut(step);
  } else {
    Status s = gate_.AwaitCut(step, wait);
    if (!s.ok()) return s;
  }
  if (!(*out = snapshot_.At(step))) {
    return FailedPrecondition("the snapshot at step " + std::to_string(step) +
                              " was superseded by a newer cut, or expired unwritten");
  }
  return Status::Ok();
}

void Shard::EndSnapshot(const std::shared_ptr<const ShardSnapshot>& snap) { snapshot_.End(snap); }

void Shard::SetRestored(int64_t step, const StatsResponse& data) {
  gate_.Reset(step);
  restored_step_ = step;
  std::lock_guard<std::mutex> lock(positions_mu_);
  restored_data_ = data;
  positions_.clear();
  for (const TrainerPosition& tp : data.restored_positions()) positions_[tp.task_index()] = tp;
}

Status Shard::RegisterTable(const RegisterTableRequest& req, RegisterTableResponse* resp) {
  const TableSpec& spec = req.spec();
  if (spec.name().empty()) return InvalidArgument("table name is empty");
  if (spec.dim() == 0 || spec.dim() > 4096) {
    return InvalidArgument("table '" + spec.name() + "': dim " + std::to_string(spec.dim()) +
                           " must be in [1, 4096]");
  }
  if (!(spec.init_stddev() >= 0) || !std::isfinite(spec.init_stddev())) {
    return InvalidArgument("table '" + spec.name() + "': init_stddev must be finite and >= 0");
  }
  std::unique_lock<std::shared_mutex> lock(tables_mu_);
  auto it = table_by_name_.find(spec.name());
  if (it != table_by_name_.end()) {
    const TableOptions& o = tables_[it->second]->options();
    if (static_cast<uint32_t>(o.dim) != spec.dim() || o.seed != spec.seed() ||
        o.init_stddev != spec.init_stddev()) {
      return FailedPrecondition("table '" + spec.name() + "' already registered with dim " +
                                std::to_string(o.dim) + ", seed " + std::to_string(o.seed) +
                                "; refusing a different spec (dim " + std::to_string(spec.dim()) +
                                ", seed " + std::to_string(spec.seed()) + ")");
    }
    resp->set_table_id(it->second);
    return Status::Ok();
  }
  TableOptions o;
  o.name = spec.name();
  o.dim = static_cast<int>(spec.dim());
  o.init_stddev = spec.init_stddev();
  o.seed = spec.seed();
  o.num_stripes = options_.table_stripes;
  o.ev = options_.ev;
  o.budget = budget_.get();
  o.track_evictions = options_.track_evictions;
  const uint32_t id = static_cast<uint32_t>(tables_.size());
  tables_.emplace_back(new EmbeddingTable(o, optimizer_.get()));
  table_by_name_[o.name] = id;
  resp->set_table_id(id);
  return Status::Ok();
}

Status Shard::RegisterDense(const RegisterDenseRequest& req, RegisterDenseResponse* resp) {
  const DenseSpec& spec = req.spec();
  if (!IsWholeArrayOf<float>(req.init_values())) {
    return InvalidArgument("dense variable '" + spec.name() + "': init_values has " +
                           std::to_string(req.init_values().size()) +
                           " bytes, not a whole number of float32");
  }
  std::vector<float> init;
  CopyOut(req.init_values(), &init);
  for (size_t i = 0; i < init.size(); ++i) {
    if (!std::isfinite(init[i])) {
      return InvalidArgument("dense variable '" + spec.name() + "': initial value " +
                             std::to_string(i) + " is not finite");
    }
  }
  std::vector<int64_t> shape(spec.shape().begin(), spec.shape().end());
  int64_t whole = 0;
  Status s = DenseStore::CheckShape(spec.name(), shape, &whole);
  if (!s.ok()) return s;
  const int64_t offset = spec.slice_offset();
  const int64_t size = spec.slice_size() == 0 && offset == 0 ? whole : spec.slice_size();
  if (offset < 0 || size <= 0 || offset > whole || size > whole - offset) {
    return InvalidArgument("dense variable '" + spec.name() + "': slice offset " +
                           std::to_string(offset) + " and size " + std::to_string(size) +
                           " do not lie within its " + std::to_string(whole) + " elements");
  }
  const std::vector<DenseSlice> plan =
      PartitionDense(router_, spec.name(), shape, options_.dense_slice_bytes);
  const std::optional<DenseSlice> mine = SliceOnShard(plan, options_.shard_index);
  if (!mine || mine->offset != offset || mine->size != size) {
    std::string here;
    if (mine) {
      here = "holds [" + std::to_string(mine->offset) + ", " +
             std::to_string(mine->offset + mine->size) + ")";
    } else {
      here = "holds none of it: it lies on shard";
      for (size_t i = 0; i < plan.size(); ++i)
        here += (i ? ", " : " ") + std::to_string(plan[i].shard);
    }
    return FailedPrecondition(
        "dense variable '" + spec.name() + "': asked to hold elements [" + std::to_string(offset) +
        ", " + std::to_string(offset + size) + ") of " + std::to_string(whole) + ", but shard " +
        std::to_string(options_.shard_index) + " of " + std::to_string(options_.num_shards) + " " +
        here + " with dense slices of at least " +
        std::to_string(options_.dense_slice_bytes / 1024) +
        " KiB (--dense_slice_kb): the client partitions dense variables differently from the "
        "servers");
  }
  if (!init.empty() && static_cast<int64_t>(init.size()) != size) {
    return InvalidArgument("dense variable '" + spec.name() + "': init_values has " +
                           std::to_string(init.size()) + " values for a slice of " +
                           std::to_string(size));
  }
  uint32_t id = 0;
  bool created = false;
  s = dense_.Register(spec.name(), shape, offset, size, init, &id, &created,
                      {spec.moving_average(), spec.momentum()});
  if (!s.ok()) return s;
  resp->set_dense_id(id);
  resp->set_created(created);
  return Status::Ok();
}

Status Shard::Pull(const PullRequest& req, PullResponse* resp) {
  CallTrace<PullResponse> trace(req.trace(), "Pull", resp);
  pull_requests_.fetch_add(1, std::memory_order_relaxed);
  bytes_in_.fetch_add(req.ByteSizeLong(), std::memory_order_relaxed);
  // Validate everything first.
  std::vector<EmbeddingTable*> tabs(req.sparse_size());
  for (int i = 0; i < req.sparse_size(); ++i) {
    const SparsePull& sp = req.sparse(i);
    tabs[i] = table(sp.table_id());
    if (!tabs[i]) return InvalidArgument("pull: unknown table id " + std::to_string(sp.table_id()));
    if (!IsWholeArrayOf<uint64_t>(sp.keys())) {
      return InvalidArgument("pull: table '" + tabs[i]->options().name + "': keys has " +
                             std::to_string(sp.keys().size()) + " bytes, not a multiple of 8");
    }
  }
  for (uint32_t id : req.dense_ids()) {
    if (dense_.NumElements(id) < 0) {
      return InvalidArgument("pull: unknown dense variable id " + std::to_string(id));
    }
  }
  std::vector<std::vector<uint64_t>> all_keys(req.sparse_size());
  for (int i = 0; i < req.sparse_size(); ++i) {
    CopyOut(req.sparse(i).keys(), &all_keys[i]);
    Status s = CheckKeysOwned(all_keys[i], "pull", tabs[i]->options().name);
    if (!s.ok()) return s;
  }
  std::vector<float> values;
  uint64_t nkeys = 0;
  const int64_t step = global_step();  // rows dead by steps_to_live at it read as missing
  obs::ScopedSpan lookup("lookup");
  for (int i = 0; i < req.sparse_size(); ++i) {
    const std::vector<uint64_t>& keys = all_keys[i];
    const int dim = tabs[i]->dim();
    SparseRows* rows = resp->add_sparse();
    rows->set_table_id(req.sparse(i).table_id());
    if (req.dtype() == F32) {
      // Rows land straight in the response buffer.
      std::string* out = rows->mutable_values();
      out->resize(keys.size() * dim * sizeof(float));
      tabs[i]->Pull(keys.data(), keys.size(), reinterpret_cast<float*>(out->data()),
                    !req.read_only(), step);
    } else {
      values.resize(keys.size() * dim);
      tabs[i]->Pull(keys.data(), keys.size(), values.data(), !req.read_only(), step);
      Encode(values.data(), values.size(), req.dtype(), rows->mutable_values());
    }
    nkeys += keys.size();
  }
  for (uint32_t id : req.dense_ids()) {
    DenseValues* dv = resp->add_dense();
    dv->set_dense_id(id);
    const size_t n = static_cast<size_t>(dense_.NumElements(id));
    Status s;
    if (req.dtype() == F32) {
      // Straight into the response buffer, as the rows above.
      std::string* out = dv->mutable_values();
      out->resize(n * sizeof(float));
      s = dense_.Pull(id, reinterpret_cast<float*>(out->data()));
    } else {
      values.resize(n);
      s = dense_.Pull(id, values.data());
      if (s.ok()) Encode(values.data(), values.size(), req.dtype(), dv->mutable_values());
    }
    if (!s.ok()) return s;
  }
  resp->set_global_step(global_step());
  pulled_keys_.fetch_add(nkeys, std::memory_order_relaxed);
  bytes_out_.fetch_add(resp->ByteSizeLong(), std::memory_order_relaxed);
  return Status::Ok();
}

Status Shard::Push(const PushRequest& req, PushResponse* resp) {
  CallTrace<PushResponse> trace(req.trace(), "Push", resp);
  push_requests_.fetch_add(1, std::memory_order_relaxed);
  bytes_in_.fetch_add(req.ByteSizeLong(), std::memory_order_relaxed);
  // Decode and validate every array before applying any of them, so a bad
  // request leaves the shard unchanged.
  thread_local DecodedPush decoded;  // reused: one per handler thread
  Status s = push_decoder_.Decode(req, &decoded);
  if (!s.ok()) return s;
  snapshot_.ExpireIfDue();
  // Everything is valid. A retry of a push already applied changes nothing.
  int64_t step = 0;
  switch (ledger_.Begin(req.task_index(), req.session(), req.seq(), &step)) {
    case PushLedger::Verdict::kApply:
      break;
    case PushLedger::Verdict::kDuplicate:
      resp->set_global_step(step);
      resp->set_cut_step(gate_.last_cut());
      duplicate_pushes_.fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    case PushLedger::Verdict::kInProgress:
      return Status(Code::kUnavailable, "push: trainer " + std::to_string(req.task_index()) +
                                            " seq " + std::to_string(req.seq()) +
                                            " is still being applied; retry");
  }
  {
    obs::ScopedSpan wait("gate");  // behind a snapshot cut, or numbering the step
    s = gate_.Enter(std::max<int64_t>(req.global_step(), 1), req.increment_global_step(),
                    req.cut_step(), &step);
  }
  if (!s.ok()) {
    ledger_.Forget(req.task_index(), req.session(), req.seq());
    return s;
  }
  {
    obs::ScopedSpan apply("apply sparse");
    for (DecodedPush::Sparse& d : decoded.sparse) {
      d.table->Push(d.keys.data(), d.keys.size(), d.grads.data(), step);
    }
  }
  {
    obs::ScopedSpan apply("apply dense");
    for (int i = 0; i < req.dense_size(); ++i) {
      // Cannot fail: ids were validated and are never removed.
      (void)dense_.Push(req.dense(i).dense_id(), decoded.dense[i].data(), step);
    }
  }
  if (req.has_position()) {
    std::lock_guard<std::mutex> lock(positions_mu_);
    TrainerPosition& tp = positions_[req.task_index()];
    tp.set_task_index(req.task_index());
    *tp.mutable_position() = req.position();
    tp.set_step(step);
    tp.set_session(req.session());
  }
  gate_.Leave(step);
  ledger_.Done(req.task_index(), req.session(), req.seq(), step);
  resp->set_global_step(step);
  resp->set_cut_step(gate_.last_cut());
  pushed_keys_.fetch_add(decoded.keys, std::memory_order_relaxed);
  return Status::Ok();
}

Status Shard::GlobalStep(const StepRequest& req, StepResponse* resp) {
  if (req.increment() < 0) return InvalidArgument("global step increment must be >= 0");
  resp->set_global_step(req.increment() > 0 ? gate_.Advance(req.increment()) : global_step());
  return Status::Ok();
}

Status Shard::WorkerDone(const WorkerDoneRequest& req, WorkerDoneResponse* resp) {
  uint32_t done = 0;
  Status s = coordinator_.WorkerDone(req.task_index(), &done);
  resp->set_done(done);
  return s;
}

Status Shard::Heartbeat(const HeartbeatRequest& req, HeartbeatResponse* resp) {
  Status s = coordinator_.Heartbeat(req);
  resp->set_global_step(global_step());
  return s;
}

void Shard::JobStatus(JobStatusResponse* resp) const {
  coordinator_.Describe(resp);
  resp->set_global_step(global_step());
}

void Shard::Stats(StatsResponse* resp) const {
  resp->set_shard_index(options_.shard_index);
  resp->set_num_shards(options_.num_shards);
  resp->set_global_step(global_step());
  resp->set_optimizer(OptimizerName(optimizer_->type()));
  resp->set_learning_rate(optimizer_->options().learning_rate);
  resp->set_restored_global_step(restored_global_step());
  {
    std::lock_guard<std::mutex> lock(positions_mu_);
    resp->mutable_restored_positions()->CopyFrom(restored_data_.restored_positions());
    resp->set_restored_batch_size(restored_data_.restored_batch_size());
    resp->set_restored_num_workers(restored_data_.restored_num_workers());
    resp->set_restored_data_files(restored_data_.restored_data_files());
    resp->set_restored_feature_spec(restored_data_.restored_feature_spec());
    for (const auto& [task, tp] : positions_) *resp->add_live_positions() = tp;
  }
  resp->set_duplicate_pushes(duplicate_pushes_.load());
  for (EmbeddingTable* t : tables()) {
    TableStats* ts = resp->add_tables();
    ts->set_name(t->options().name);
    ts->set_dim(t->dim());
    ts->set_rows(t->size());
    ts->set_bytes(t->MemoryBytes());
    const EvCounters c = t->counters();
    ts->set_admitted(c.admitted);
    ts->set_filtered_reads(c.filtered_reads);
    ts->set_filtered_grads(c.filtered_grads);
    ts->set_evicted_ttl(c.evicted_ttl);
    ts->set_evicted_l2(c.evicted_l2);
    ts->set_evicted_budget(c.evicted_budget);
    ts->set_filter_bytes(t->FilterBytes());
    ts->set_pending_shed(c.pending_shed);
  }
  resp->set_longest_sweep_hold_ms(longest_sweep_hold_ms_.load());
  resp->set_sweeps(sweeps_.load());
  if (budget_) {
    resp->set_memory_budget_bytes(budget_->limit());
    resp->set_memory_used_bytes(budget_->used());
    resp->set_memory_peak_bytes(budget_->peak());
  }
  resp->set_dense_params(dense_.TotalElements());
  dense_.ForEach([&](uint32_t, const DenseVariable& v) {
    DenseStats* d = resp->add_dense();
    d->set_name(v.name);
    for (int64_t n : v.shape) d->add_shape(n);
  });
  const ProcessMemory mem = ReadProcessMemory();
  resp->set_process_rss_bytes(mem.rss_bytes);
  resp->set_process_peak_rss_bytes(mem.peak_rss_bytes);
  resp->set_pull_requests(pull_requests_.load());
  resp->set_push_requests(push_requests_.load());
  resp->set_pulled_keys(pulled_keys_.load());
  resp->set_pushed_keys(pushed_keys_.load());
  resp->set_bytes_in(bytes_in_.load());
  resp->set_bytes_out(bytes_out_.load());
}

}  // namespace deepfm::ps

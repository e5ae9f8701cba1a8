#include "ps/embedding_table.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/random.h"

namespace deepfm::ps {

static_assert(sizeof(RowMeta) == 2 * sizeof(float), "RowMeta fills two floats of a row");

EmbeddingTable::EmbeddingTable(const TableOptions& options, const Optimizer* optimizer)
    : options_(options),
      optimizer_(optimizer),
      slot_floats_(optimizer->SlotFloats(options.dim)),
      stride_(kHeaderFloats + options.dim + slot_floats_) {
  int bits = 0;
  while ((1 << bits) < std::max(1, options_.num_stripes)) ++bits;
  options_.num_stripes = 1 << bits;
  stripe_shift_ = 64 - bits;
  stripes_.reserve(options_.num_stripes);
  for (int i = 0; i < options_.num_stripes; ++i) {
    stripes_.emplace_back(new Stripe(stride_));
    stripes_.back()->position = i;
  }
  const EvPolicy& ev = options_.ev;
  if (ev.admission()) {
    const BloomSize b = BloomSizing(ev.bloom_fp_rate, ev.bloom_max_elements);
    const uint64_t per_stripe = (b.counters + options_.num_stripes - 1) / options_.num_stripes;
    for (auto& st : stripes_) st->filter = AdmissionFilter(ev.filter, per_stripe, b.hashes);
  }
  // MemoryBytes counts the table object too.
  if (options_.budget) options_.budget->Charge(static_cast<int64_t>(sizeof(*this)));
  for (auto& st : stripes_) Recharge(*st);
}

EmbeddingTable::~EmbeddingTable() {
  if (!options_.budget) return;
  options_.budget->Charge(-static_cast<int64_t>(sizeof(*this)));
  for (auto& st : stripes_) options_.budget->Charge(-static_cast<int64_t>(st->charged));
}

void EmbeddingTable::Recharge(Stripe& s) {
  if (!options_.budget) return;
  // What MemoryBytes counts, less the snapshot's kept rows and the eviction
  // records (transient, and outside the budget).
  const size_t now = sizeof(Stripe) + s.arena.MemoryBytes() + s.index.MemoryBytes() + s.filter.MemoryBytes();
  options_.budget->Charge(static_cast<int64_t>(now) - static_cast<int64_t>(s.charged));
  s.charged = now;
}

bool EmbeddingTable::BelowL2(const float* row) const {
  const float* v = row + kHeaderFloats;
  double sum = 0;
  for (int i = 0; i < options_.dim; ++i) sum += static_cast<double>(v[i]) * v[i];
  return 0.5 * sum < options_.ev.l2_threshold;
}

void EmbeddingTable::EvictRow(Stripe& s, uint64_t key, uint32_t r, Why why, int64_t step) {
  float* row = s.arena.Row(r);
  if (s.cow) KeepForSnapshot(s, r, row);
  // The copy of an open snapshot walks arena positions and skips freed ones
  // (the kept bytes stand for this row).
  s.index.Erase(key);
  s.arena.Free(r);
  if (options_.track_evictions) {
    // The newest cut's snapshot still holds a row evicted after that cut, so
    // the eviction counts as after it: the next delta records it.
    s.evicted.emplace_back(key, std::max(step, s.last_cut + 1));
  }
  switch (why) {
    case Why::kTtl:
      evicted_ttl_.fetch_add(1, std::memory_order_relaxed);
      break;
    case Why::kL2:
      evicted_l2_.fetch_add(1, std::memory_order_relaxed);
      break;
    case Why::kBudget:
      evicted_budget_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

void EmbeddingTable::EvictLeastValuable(Stripe& s, int64_t step) {
  std::vector<std::pair<uint64_t, std::pair<uint64_t, uint32_t>>> rows;  // value, (key, row)
  rows.reserve(s.index.size());
  const BudgetOrder order = options_.ev.budget_order;
  s.index.ForEach([&](uint64_t key, uint32_t r) {
    rows.push_back({BudgetValue(MetaOf(s.arena.Row(r)), order), {key, r}});
  });
  if (rows.empty()) return;
  const size_t n = std::max<size_t>(1, rows.size() / 16);
  std::nth_element(rows.begin(), rows.begin() + (n - 1), rows.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < n; ++i)
    EvictRow(s, rows[i].second.first, rows[i].second.second, Why::kBudget, step);
}

float* EmbeddingTable::CreateRow(Stripe& s, uint64_t key, int64_t step, uint32_t* index) {
  if (options_.budget) {
    const size_t growth = s.arena.GrowthBytes() + s.index.GrowthBytes();
    auto fits = [&] { return options_.budget->Fits(static_cast<int64_t>(growth)); };
    // Counts of keys not sighted since the last shed go before any row.
    if (growth > 0 && !fits() && s.filter.kind() == FilterKind::kCounter) ShedUnsightedCounts(s);
    if (growth > 0 && !fits()) EvictLeastValuable(s, step);
  }
  float* row = FindOrCreate(s, key, index);
  Recharge(s);
  return row;
}

void EmbeddingTable::InitRow(uint64_t key, float* row) const {
  std::memcpy(row, &key, sizeof(key));
  SetMeta(row, RowMeta{});
  InitRowNormal(key, options_.seed, options_.init_stddev, row + kHeaderFloats, options_.dim);
  optimizer_->InitSlots(row + kHeaderFloats + options_.dim, options_.dim);
}

float* EmbeddingTable::FindOrCreate(Stripe& s, uint64_t key, uint32_t* index, bool init) {
  uint32_t r = s.index.Find(key);
  if (r == KeyIndex::kEmpty) {
    r = s.arena.Allocate();
    s.index.Insert(key, r);
    float* row = s.arena.Row(r);
    if (init) {
      InitRow(key, row);
      created_.fetch_add(1, std::memory_order_relaxed);
      if (s.cow && r < s.at_cut) {
        // A freed position below the cut, reused: not in the snapshot. Its
        // step reads as after the cut (a push sets its own step later).
        RowMeta m = MetaOf(row);
        m.last_step = snapshot_step32_ + 1;
        SetMeta(row, m);
      }
    } else {
      std::memcpy(row, &key, sizeof(key));
    }
  }
  if (index) *index = r;
  return s.arena.Row(r);
}

void EmbeddingTable::KeepForSnapshot(Stripe& s, uint32_t r, const float* row) {
  // Rows created after the cut (at or beyond at_cut) are not in the
  // snapshot; rows already copied need no copy; a row pushed since the cut
  // (last_step beyond it) already has one.
  if (r < s.copied || r >= s.at_cut || ChangedSinceCut(s, r)) return;
  s.kept_rows.insert(s.kept_rows.end(), row, row + stride_);
}

void EmbeddingTable::Pull(const uint64_t* keys, size_t n, float* out, bool create_missing,
                          int64_t step) {
  const int dim = options_.dim;
  // Under a policy, rows come only from pushes it admits, and dead rows
  // (steps_to_live) read as missing.
  const bool create = create_missing && !options_.ev.any() && !options_.budget;
  const uint32_t step32 = static_cast<uint32_t>(step);
  uint64_t missing = 0;
  for (size_t i = 0; i < n; ++i) {
    Stripe& s = StripeOf(keys[i]);
    float* dst = out + i * dim;
    std::lock_guard<SpinLock> lock(s.mu);
    if (create) {
      std::memcpy(dst, FindOrCreate(s, keys[i]) + kHeaderFloats, dim * sizeof(float));
      continue;
    }
    const uint32_t r = s.index.Find(keys[i]);
    if (r != KeyIndex::kEmpty && !Expired(MetaOf(s.arena.Row(r)), step32)) {
      std::memcpy(dst, s.arena.Row(r) + kHeaderFloats, dim * sizeof(float));
    } else {
      InitRowNormal(keys[i], options_.seed, options_.init_stddev, dst, dim);
      ++missing;
    }
  }
  if (options_.ev.admission() && create_missing) {
    filtered_reads_.fetch_add(missing, std::memory_order_relaxed);
  }
}

void EmbeddingTable::Push(const uint64_t* keys, size_t n, const float* grads, int64_t step) {
  PushConstants c;
  {
    std::lock_guard<std::mutex> lock(opt_mu_);
    c = optimizer_->BeginPush(&opt_state_, step);
  }
  const int dim = options_.dim;
  const uint32_t step32 = static_cast<uint32_t>(step);
  const EvPolicy& ev = options_.ev;
  const bool policy = ev.any() || options_.budget;
  const bool admission = ev.admission();
  for (size_t i = 0; i < n; ++i) {
    Stripe& s = StripeOf(keys[i]);
    std::lock_guard<SpinLock> lock(s.mu);
    uint32_t r;
    float* row;
    if (!policy) {
      row = FindOrCreate(s, keys[i], &r);
    } else {
      r = s.index.Find(keys[i]);
      if (r != KeyIndex::kEmpty && Expired(MetaOf(s.arena.Row(r)), step32)) {
        EvictRow(s, keys[i], r, Why::kTtl, step);
        r = KeyIndex::kEmpty;
      }
      if (r == KeyIndex::kEmpty) {
        if (admission) {
          KeepFilterForSnapshot(s);
          // A counter filter about to double past the budget first forgets
          // the stripe's keys not sighted since its last shed, and if that
          // is not room enough, all of the stripe's counts.
          if (options_.budget && s.filter.GrowthBytes() > 0) {
            auto fits = [&] {
              return options_.budget->Fits(static_cast<int64_t>(s.filter.GrowthBytes()));
            };
            if (!fits()) {
              ShedUnsightedCounts(s);
              if (s.filter.GrowthBytes() > 0 && !fits()) {
                pending_shed_.fetch_add(s.filter.pending(), std::memory_order_relaxed);
                s.filter.Clear();
                Recharge(s);
              }
            }
          }
          const uint32_t seen = s.filter.Sight(keys[i]);
          if (seen < ev.filter_freq) {
            Recharge(s);
            filtered_grads_.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          s.filter.Admitted(keys[i]);
          admitted_.fetch_add(1, std::memory_order_relaxed);
        }
        row = CreateRow(s, keys[i], step, &r);
      } else {
        row = s.arena.Row(r);
      }
    }
    if (s.cow) KeepForSnapshot(s, r, row);
    RowMeta meta = MetaOf(row);
    if (meta.frequency != UINT32_MAX) ++meta.frequency;
    meta.last_step = step32;
    SetMeta(row, meta);
    optimizer_->Apply(row + kHeaderFloats, row + kHeaderFloats + dim, grads + i * dim, dim, c);
  }
}

size_t EmbeddingTable::size() const {
  size_t n = 0;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    n += s->index.size();
  }
  return n;
}

size_t EmbeddingTable::MemoryBytes() const {
  size_t b = sizeof(*this);
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    b += sizeof(Stripe) + s->index.MemoryBytes() + s->arena.MemoryBytes() +
         s->kept_rows.capacity() * sizeof(float) + s->filter.MemoryBytes() +
         s->evicted.capacity() * sizeof(s->evicted[0]);
  }
  return b;
}

void EmbeddingTable::ForEachRow(const RowVisitor& fn) const {
  const int dim = options_.dim;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->index.ForEach([&](uint64_t key, uint32_t r) {
      const float* row = s->arena.Row(r);
      fn(key, row + kHeaderFloats, row + kHeaderFloats + dim, MetaOf(row));
    });
  }
}

void EmbeddingTable::Upsert(uint64_t key, const float* values, const float* slots, RowMeta meta) {
  Stripe& s = StripeOf(key);
  std::lock_guard<SpinLock> lock(s.mu);
  float* row = FindOrCreate(s, key, nullptr, /*init=*/false);
  Recharge(s);
  SetMeta(row, meta);
  std::memcpy(row + kHeaderFloats, values, options_.dim * sizeof(float));
  std::memcpy(row + kHeaderFloats + options_.dim, slots, slot_floats_ * sizeof(float));
}

uint64_t EmbeddingTable::BeginSnapshot(int64_t step) {
  EndSnapshot();
  {
    std::lock_guard<std::mutex> lock(opt_mu_);
    snapshot_opt_state_ = opt_state_;
  }
  snapshot_step32_ = static_cast<uint32_t>(step);
  const uint64_t generation = snapshot_generation_.fetch_add(1) + 1;
  std::lock_guard<std::mutex> filters_lock(snapshot_filters_mu_);
  const bool admission = options_.ev.admission();
  // Empty filters; a stripe's is copied in on its first change.
  snapshot_filters_.assign(admission ? stripes_.size() : 0, AdmissionFilter());
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->filter_cow = admission;
    s->cow = true;
    s->copied = 0;
    s->at_cut = s->arena.allocated();
    s->last_cut = step;
  }
  return generation;
}

int64_t EmbeddingTable::CopySnapshotStripe(uint64_t generation, int stripe, RecordBuffer* out,
                                           int64_t since_step, double* longest_hold_ms) {
  Stripe& s = *stripes_[stripe];
  const size_t row_bytes = stride_ * sizeof(float);
  int64_t n = 0;
  // A record is a row's bytes (key, meta, values, slots), as at the cut.
  // Rows the policy drops at the cut stay out of the checkpoint (eviction
  // runs before every save); the live table drops them at its next sweep.
  const bool ttl = options_.ev.steps_to_live > 0, l2 = options_.ev.l2_threshold > 0;
  auto emit = [&](const float* row) {
    if (since_step >= 0 && !StepAfter(MetaOf(row).last_step, static_cast<uint32_t>(since_step)))
      return;
    if ((ttl && Expired(MetaOf(row), snapshot_step32_)) || (l2 && BelowL2(row))) return;
    std::memcpy(out->Extend(row_bytes), row, row_bytes);
    ++n;
  };
  // Chunk by chunk of arena positions, so each hold of the lock is short.
  // Rows never move and positions past at_cut hold only rows created after
  // the cut; rows are not freed while a snapshot is open (nothing frees
  // them yet: eviction must end or respect a snapshot).
  using Clock = std::chrono::steady_clock;
  auto note_hold = [&](Clock::time_point since) {
    if (!longest_hold_ms) return;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - since).count();
    *longest_hold_ms = std::max(*longest_hold_ms, ms);
  };
  std::vector<float> kept;
  while (true) {
    // Room for a whole chunk first, so no reallocation happens under the lock.
    out->Reserve(static_cast<size_t>(kCopyChunkRows) * row_bytes);
    std::lock_guard<SpinLock> lock(s.mu);
    const Clock::time_point held = Clock::now();
    if (generation != snapshot_generation_.load() || !s.cow) return -1;
    if (s.copied >= s.at_cut) {
      // Every chunk is copied: no push keeps copies from here on, and the
      // rows changed before their chunk was reached are emitted unlocked.
      kept.swap(s.kept_rows);
      s.cow = false;
      note_hold(held);
      break;
    }
    const uint32_t end = std::min(s.at_cut, s.copied + kCopyChunkRows);
    for (uint32_t r = s.copied; r < end; ++r) {
      const float* row = s.arena.Row(r);
      // Changed since the cut: its old bytes are among the kept rows.
      if (ChangedSinceCut(s, r)) continue;
      emit(row);
    }
    s.copied = end;
    note_hold(held);
  }
  out->Reserve(kept.size() * sizeof(float));
  for (size_t i = 0; i < kept.size(); i += stride_) emit(kept.data() + i);
  return n;
}

void EmbeddingTable::EndSnapshot() {
  snapshot_generation_.fetch_add(1);
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->filter_cow = false;  // before the vector goes: pushes stop writing it
  }
  {
    std::lock_guard<std::mutex> lock(snapshot_filters_mu_);
    std::vector<AdmissionFilter>().swap(snapshot_filters_);
  }
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->cow = false;
    std::vector<float>().swap(s->kept_rows);
  }
}

uint64_t EmbeddingTable::Sweep(int64_t step, const SweepRule& rule, double* longest_hold_ms) {
  using Clock = std::chrono::steady_clock;
  const uint32_t step32 = static_cast<uint32_t>(step);
  const bool ttl = rule.ttl && options_.ev.steps_to_live > 0;
  const bool l2 = rule.l2 && options_.ev.l2_threshold > 0;
  const BudgetOrder order = options_.ev.budget_order;
  uint64_t dropped = 0;
  for (auto& sp : stripes_) {
    Stripe& s = *sp;
    // By arena position, kSweepChunkRows rows per hold of the lock, so a
    // pull or push waits for one chunk, not a stripe. A row carries its key;
    // the arena knows the freed positions. Rows a push adds behind the scan
    // are new and kept.
    for (uint32_t begin = 0;; begin += kSweepChunkRows) {
      std::lock_guard<SpinLock> lock(s.mu);
      const Clock::time_point held = Clock::now();
      const uint32_t end = std::min(s.arena.allocated(), begin + kSweepChunkRows);
      if (begin >= end) break;
      for (uint32_t r = begin; r < end; ++r) {
        if (s.arena.IsFreed(r)) continue;
        const float* row = s.arena.Row(r);
        const RowMeta m = MetaOf(row);
        Why why;
        if (ttl && Expired(m, step32)) {
          why = Why::kTtl;
        } else if (l2 && BelowL2(row)) {
          why = Why::kL2;
        } else if (rule.below_value > 0 && BudgetValue(m, order) < rule.below_value) {
          why = Why::kBudget;
        } else {
          continue;
        }
        uint64_t key;
        std::memcpy(&key, row, sizeof(key));
        EvictRow(s, key, r, why, step);
        ++dropped;
      }
      Recharge(s);
      if (longest_hold_ms) {
        *longest_hold_ms = std::max(
            *longest_hold_ms, std::chrono::duration<double, std::milli>(Clock::now() - held).count());
      }
    }
  }
  return dropped;
}

void EmbeddingTable::SampleBudgetValues(int per_stripe, std::vector<uint64_t>* out) const {
  const BudgetOrder order = options_.ev.budget_order;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    const uint32_t n = s->arena.allocated();
    if (n == 0) continue;
    // Evenly spaced arena positions: rows sit there in no order of value.
    const uint32_t stride = std::max<uint32_t>(1, n / static_cast<uint32_t>(per_stripe));
    for (uint32_t r = 0; r < n; r += stride) {
      if (!s->arena.IsFreed(r)) out->push_back(BudgetValue(MetaOf(s->arena.Row(r)), order));
    }
  }
}

EvCounters EmbeddingTable::counters() const {
  EvCounters c;
  c.created = created_.load();
  c.admitted = admitted_.load();
  c.filtered_reads = filtered_reads_.load();
  c.filtered_grads = filtered_grads_.load();
  c.evicted_ttl = evicted_ttl_.load();
  c.evicted_l2 = evicted_l2_.load();
  c.evicted_budget = evicted_budget_.load();
  c.pending_shed = pending_shed_.load();
  return c;
}

size_t EmbeddingTable::SpareBytes() const {
  size_t rows = 0;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    rows += s->arena.spare_rows();
  }
  return rows * record_bytes();
}

uint64_t EmbeddingTable::ShedPendingCounts() {
  uint64_t shed = 0;
  for (const auto& sp : stripes_) {
    Stripe& s = *sp;
    std::lock_guard<SpinLock> lock(s.mu);
    if (s.filter.kind() != FilterKind::kCounter || s.filter.MemoryBytes() == 0) continue;
    shed += ShedUnsightedCounts(s);
  }
  return shed;
}

uint64_t EmbeddingTable::ShedUnsightedCounts(Stripe& s) {
  KeepFilterForSnapshot(s);  // an open snapshot keeps the counts as at its cut
  const uint64_t shed = s.filter.ShedUnsighted();
  Recharge(s);
  pending_shed_.fetch_add(shed, std::memory_order_relaxed);
  return shed;
}

size_t EmbeddingTable::FilterBytes() const {
  size_t b = 0;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    b += s->filter.MemoryBytes();
  }
  return b;
}

void EmbeddingTable::ForEachPendingKey(const std::function<void(uint64_t, uint32_t)>& fn) const {
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->filter.ForEachPending(fn);
  }
}

void EmbeddingTable::ForEachSnapshotPendingKey(
    const std::function<void(uint64_t, uint32_t)>& fn) const {
  std::lock_guard<std::mutex> lock(snapshot_filters_mu_);
  if (snapshot_filters_.empty()) return;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> stripe_lock(s->mu);
    FilterAtCut(*s).ForEachPending(fn);
  }
}

std::vector<uint16_t> EmbeddingTable::SnapshotBloomCounters() const {
  std::vector<uint16_t> all;
  std::lock_guard<std::mutex> lock(snapshot_filters_mu_);
  if (snapshot_filters_.empty()) return all;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> stripe_lock(s->mu);
    const AdmissionFilter& f = FilterAtCut(*s);
    all.insert(all.end(), f.bloom().begin(), f.bloom().end());
  }
  return all;
}

void EmbeddingTable::SetPendingCount(uint64_t key, uint32_t count) {
  Stripe& s = StripeOf(key);
  std::lock_guard<SpinLock> lock(s.mu);
  if (s.index.Find(key) != KeyIndex::kEmpty) return;  // admitted already
  s.filter.SetCount(key, count);
  Recharge(s);
}

std::vector<uint16_t> EmbeddingTable::BloomCounters() const {
  std::vector<uint16_t> all;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    all.insert(all.end(), s->filter.bloom().begin(), s->filter.bloom().end());
  }
  return all;
}

bool EmbeddingTable::AddBloomCounters(const std::vector<uint16_t>& counters) {
  size_t total = 0;
  for (const auto& s : stripes_) total += s->filter.bloom().size();
  if (total != counters.size() || total == 0) return false;
  size_t at = 0;
  for (auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    for (uint16_t& c : s->filter.bloom()) {
      c = static_cast<uint16_t>(std::min<uint32_t>(UINT16_MAX, uint32_t{c} + counters[at++]));
    }
  }
  return true;
}

void EmbeddingTable::EvictedKeys(int64_t after, int64_t upto, std::vector<uint64_t>* out) const {
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    for (const auto& [key, step] : s->evicted) {
      if (step > after && step <= upto) out->push_back(key);
    }
  }
}

void EmbeddingTable::TrimEvicted(int64_t upto) {
  for (auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    auto& e = s->evicted;
    e.erase(std::remove_if(e.begin(), e.end(), [&](const auto& x) { return x.second <= upto; }),
            e.end());
  }
}

void EmbeddingTable::Erase(uint64_t key) {
  Stripe& s = StripeOf(key);
  std::lock_guard<SpinLock> lock(s.mu);
  const uint32_t r = s.index.Erase(key);
  if (r == KeyIndex::kEmpty) return;
  s.arena.Free(r);
}

VariableOptState EmbeddingTable::snapshot_opt_state() const {
  std::lock_guard<std::mutex> lock(opt_mu_);
  return snapshot_opt_state_;
}

VariableOptState EmbeddingTable::opt_state() const {
  std::lock_guard<std::mutex> lock(opt_mu_);
  return opt_state_;
}

void EmbeddingTable::set_opt_state(const VariableOptState& s) {
  std::lock_guard<std::mutex> lock(opt_mu_);
  opt_state_ = s;
}

}  // namespace deepfm::ps

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
  for (int i = 0; i < options_.num_stripes; ++i) stripes_.emplace_back(new Stripe(stride_));
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
  if (r < s.copied || r >= s.at_cut || MetaOf(row).last_step > snapshot_step32_) return;
  s.kept_rows.insert(s.kept_rows.end(), row, row + stride_);
}

void EmbeddingTable::Pull(const uint64_t* keys, size_t n, float* out, bool create_missing) {
  const int dim = options_.dim;
  for (size_t i = 0; i < n; ++i) {
    Stripe& s = StripeOf(keys[i]);
    float* dst = out + i * dim;
    std::lock_guard<SpinLock> lock(s.mu);
    if (create_missing) {
      std::memcpy(dst, FindOrCreate(s, keys[i]) + kHeaderFloats, dim * sizeof(float));
      continue;
    }
    const uint32_t r = s.index.Find(keys[i]);
    if (r != KeyIndex::kEmpty) {
      std::memcpy(dst, s.arena.Row(r) + kHeaderFloats, dim * sizeof(float));
    } else {
      InitRowNormal(keys[i], options_.seed, options_.init_stddev, dst, dim);
    }
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
  for (size_t i = 0; i < n; ++i) {
    Stripe& s = StripeOf(keys[i]);
    std::lock_guard<SpinLock> lock(s.mu);
    uint32_t r;
    float* row = FindOrCreate(s, keys[i], &r);
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
         s->kept_rows.capacity() * sizeof(float);
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
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->cow = true;
    s->copied = 0;
    s->at_cut = s->arena.allocated();
  }
  return generation;
}

int64_t EmbeddingTable::CopySnapshotStripe(uint64_t generation, int stripe, RecordBuffer* out,
                                           int64_t since_step, double* longest_hold_ms) {
  Stripe& s = *stripes_[stripe];
  const size_t row_bytes = stride_ * sizeof(float);
  int64_t n = 0;
  // A record is a row's bytes (key, meta, values, slots), as at the cut.
  auto emit = [&](const float* row) {
    if (since_step >= 0 && MetaOf(row).last_step <= static_cast<uint32_t>(since_step)) return;
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
      if (MetaOf(row).last_step > snapshot_step32_) continue;
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
    s->cow = false;
    std::vector<float>().swap(s->kept_rows);
  }
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

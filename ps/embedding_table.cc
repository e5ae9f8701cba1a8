#include "ps/embedding_table.h"

#include <algorithm>
#include <cstring>

#include "common/random.h"

namespace deepfm::ps {

EmbeddingTable::EmbeddingTable(const TableOptions& options, const Optimizer* optimizer)
    : options_(options),
      optimizer_(optimizer),
      slot_floats_(optimizer->SlotFloats(options.dim)),
      stride_(kMetaFloats + options.dim + slot_floats_) {
  int bits = 0;
  while ((1 << bits) < std::max(1, options_.num_stripes)) ++bits;
  options_.num_stripes = 1 << bits;
  stripe_shift_ = 64 - bits;
  stripes_.reserve(options_.num_stripes);
  for (int i = 0; i < options_.num_stripes; ++i) stripes_.emplace_back(new Stripe(stride_));
}

void EmbeddingTable::InitRow(uint64_t key, float* row) const {
  std::memset(row, 0, kMetaFloats * sizeof(float));
  InitRowNormal(key, options_.seed, options_.init_stddev, row + kMetaFloats, options_.dim);
  optimizer_->InitSlots(row + kMetaFloats + options_.dim, options_.dim);
}

float* EmbeddingTable::FindOrCreate(Stripe& s, uint64_t key, bool* created, bool init) {
  uint32_t r = s.index.Find(key);
  const bool fresh = r == KeyIndex::kEmpty;
  if (fresh) {
    r = s.arena.Allocate();
    s.index.Insert(key, r);
    if (init) InitRow(key, s.arena.Row(r));
  }
  if (created) *created = fresh;
  return s.arena.Row(r);
}

void EmbeddingTable::KeepForSnapshot(Stripe& s, uint64_t key, float* row, bool created) {
  RowMeta meta;
  std::memcpy(&meta, row, sizeof(meta));
  // A row pushed since the cut (last_step beyond it) already has its copy.
  // A row created by this push did not exist at the cut: it is left out
  // (its last_step moves past the cut below), and needs no copy.
  if (created || meta.last_step > snapshot_step32_) return;
  s.kept_keys.push_back(key);
  s.kept_rows.insert(s.kept_rows.end(), row, row + stride_);
}

void EmbeddingTable::Pull(const uint64_t* keys, size_t n, float* out, bool create_missing) {
  const int dim = options_.dim;
  for (size_t i = 0; i < n; ++i) {
    Stripe& s = StripeOf(keys[i]);
    float* dst = out + i * dim;
    std::lock_guard<SpinLock> lock(s.mu);
    if (create_missing) {
      bool created;
      float* row = FindOrCreate(s, keys[i], &created);
      if (created && s.cow) {
        // Not in the table at the cut: mark it as changed after it.
        RowMeta meta{};
        meta.last_step = snapshot_step32_ + 1;
        std::memcpy(row, &meta, sizeof(meta));
      }
      std::memcpy(dst, row + kMetaFloats, dim * sizeof(float));
      continue;
    }
    const uint32_t r = s.index.Find(keys[i]);
    if (r != KeyIndex::kEmpty) {
      std::memcpy(dst, s.arena.Row(r) + kMetaFloats, dim * sizeof(float));
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
    bool created;
    float* row = FindOrCreate(s, keys[i], &created);
    if (s.cow) KeepForSnapshot(s, keys[i], row, created);
    RowMeta meta{};
    std::memcpy(&meta, row, sizeof(meta));
    if (meta.frequency != UINT32_MAX) ++meta.frequency;
    meta.last_step = step32;
    std::memcpy(row, &meta, sizeof(meta));
    optimizer_->Apply(row + kMetaFloats, row + kMetaFloats + dim, grads + i * dim, dim, c);
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
         s->kept_keys.capacity() * sizeof(uint64_t) + s->kept_rows.capacity() * sizeof(float);
  }
  return b;
}

void EmbeddingTable::ForEachRow(const RowVisitor& fn) const {
  const int dim = options_.dim;
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->index.ForEach([&](uint64_t key, uint32_t r) {
      const float* row = s->arena.Row(r);
      RowMeta meta{};
      std::memcpy(&meta, row, sizeof(meta));
      fn(key, row + kMetaFloats, row + kMetaFloats + dim, meta);
    });
  }
}

void EmbeddingTable::Upsert(uint64_t key, const float* values, const float* slots, RowMeta meta) {
  Stripe& s = StripeOf(key);
  std::lock_guard<SpinLock> lock(s.mu);
  float* row = FindOrCreate(s, key, nullptr, /*init=*/false);
  std::memcpy(row, &meta, sizeof(meta));
  std::memcpy(row + kMetaFloats, values, options_.dim * sizeof(float));
  std::memcpy(row + kMetaFloats + options_.dim, slots, slot_floats_ * sizeof(float));
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
  }
  return generation;
}

int64_t EmbeddingTable::CopySnapshotStripe(uint64_t generation, int stripe, RecordBuffer* out,
                                           int64_t since_step) {
  Stripe& s = *stripes_[stripe];
  const size_t record = record_bytes();
  const size_t row_bytes = stride_ * sizeof(float);
  std::lock_guard<SpinLock> lock(s.mu);
  if (generation != snapshot_generation_.load() || !s.cow) return -1;
  const size_t kept = s.kept_keys.size();
  const size_t at = out->size();
  char* p = out->Extend((s.index.size() + kept) * record);
  int64_t n = 0;
  // A record is the key followed by the row's bytes: meta, values, slots.
  auto emit = [&](uint64_t key, const float* row) {
    if (since_step >= 0) {
      RowMeta meta;
      std::memcpy(&meta, row, sizeof(meta));
      if (meta.last_step <= static_cast<uint32_t>(since_step)) return;
    }
    std::memcpy(p, &key, 8);
    std::memcpy(p + 8, row, row_bytes);
    p += record;
    ++n;
  };
  for (size_t i = 0; i < kept; ++i) emit(s.kept_keys[i], s.kept_rows.data() + i * stride_);
  s.index.ForEach([&](uint64_t key, uint32_t r) {
    const float* row = s.arena.Row(r);
    RowMeta meta;
    std::memcpy(&meta, row, sizeof(meta));
    // Changed since the cut: its copy was emitted above, or it is new.
    if (meta.last_step > snapshot_step32_) return;
    emit(key, row);
  });
  out->Truncate(at + static_cast<size_t>(n) * record);
  s.cow = false;
  std::vector<uint64_t>().swap(s.kept_keys);
  std::vector<float>().swap(s.kept_rows);
  return n;
}

void EmbeddingTable::EndSnapshot() {
  snapshot_generation_.fetch_add(1);
  for (const auto& s : stripes_) {
    std::lock_guard<SpinLock> lock(s->mu);
    s->cow = false;
    std::vector<uint64_t>().swap(s->kept_keys);
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

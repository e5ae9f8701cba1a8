// EmbeddingTable: DeepRec's EmbeddingVariable. Rows keyed by uint64 with no
// fixed vocabulary and no hash-bucket modulo; a row is created on first touch
// with values that depend only on (key, seed). Each row keeps its optimizer
// slots beside its values.
//
// Thread safety: every method may be called from many threads at once. Keys
// are spread over independent stripes, each with its own small lock, so there
// is no table-wide lock on the pull or push path.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ps/key_index.h"
#include "ps/optimizer.h"
#include "ps/row_arena.h"
#include "ps/spin_lock.h"

namespace deepfm::ps {

struct TableOptions {
  std::string name;
  int dim = 17;
  float init_stddev = 0.01f;
  uint64_t seed = 0;
  int num_stripes = 256;  // rounded up to a power of two
};

// Per-row bookkeeping kept for feature admission and eviction. Trivial so it
// can live in the row's float storage.
struct RowMeta {
  uint32_t frequency;     // pushes that touched the row (saturating)
  uint32_t last_step;     // global step of the last push (low 32 bits)
};

class EmbeddingTable {
 public:
  EmbeddingTable(const TableOptions& options, const Optimizer* optimizer);

  const TableOptions& options() const { return options_; }
  int dim() const { return options_.dim; }
  // Floats of optimizer state per row.
  int slot_floats() const { return slot_floats_; }

  // Copies the rows of keys[0..n) into out[n * dim], creating missing rows.
  // With create_missing false a missing key yields its initial values and the
  // table is unchanged.
  void Pull(const uint64_t* keys, size_t n, float* out, bool create_missing = true);

  // Applies grads[n * dim] to the rows of keys[0..n) with the optimizer,
  // creating missing rows first. `global_step` is the step the push counts as.
  // Gradients must already be validated (finite, right size).
  void Push(const uint64_t* keys, size_t n, const float* grads, int64_t global_step);

  size_t size() const;
  // Bytes held by rows, slots, metadata and the key index.
  size_t MemoryBytes() const;

  // Visits every row under its stripe's lock: fn(key, values[dim],
  // slots[slot_floats], meta). Rows touched concurrently are seen either
  // before or after each update, never torn.
  using RowVisitor =
      std::function<void(uint64_t key, const float* values, const float* slots, RowMeta meta)>;
  void ForEachRow(const RowVisitor& fn) const;

  // Sets a row's values, slots and meta, creating the row if needed (restore).
  void Upsert(uint64_t key, const float* values, const float* slots, RowMeta meta);

  // The per-table optimizer state (AdamAsync's beta powers), for checkpoints.
  VariableOptState opt_state() const;
  void set_opt_state(const VariableOptState& s);

 private:
  struct Stripe {
    SpinLock mu;
    KeyIndex index;
    RowArena arena;
    explicit Stripe(int stride) : arena(stride) {}
  };
  static constexpr int kMetaFloats = 2;

  Stripe& StripeOf(uint64_t key) const { return *stripes_[Mix64(key) >> stripe_shift_]; }
  // Returns the row for key in `s` (lock held), creating it if missing.
  float* FindOrCreate(Stripe& s, uint64_t key);
  void InitRow(uint64_t key, float* row) const;

  TableOptions options_;
  const Optimizer* optimizer_;
  int slot_floats_;
  int stride_;
  int stripe_shift_;
  std::vector<std::unique_ptr<Stripe>> stripes_;
  mutable std::mutex opt_mu_;
  VariableOptState opt_state_;
};

}  // namespace deepfm::ps

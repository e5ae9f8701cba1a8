// EmbeddingTable: DeepRec's EmbeddingVariable. Rows keyed by uint64 with no
// fixed vocabulary and no hash-bucket modulo; a row is created on first touch
// with values that depend only on (key, seed). Each row keeps its optimizer
// slots beside its values.
//
// Thread safety: every method may be called from many threads at once. Keys
// are spread over independent stripes, each with its own small lock, so there
// is no table-wide lock on the pull or push path.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "ps/admission_filter.h"
#include "ps/ev_policy.h"
#include "ps/key_index.h"
#include "ps/optimizer.h"
#include "ps/row_arena.h"
#include "ps/spin_lock.h"

namespace deepfm::ps {

// A growable byte buffer that leaves what it grows into uninitialised: a
// stripe's snapshot copy is written exactly once, under the stripe's lock,
// and zero-filling it first would only lengthen that hold.
class RecordBuffer {
 public:
  void clear() { size_ = 0; }
  size_t size() const { return size_; }
  const char* data() const { return buf_.get(); }
  // Makes room for n more bytes without appending them.
  void Reserve(size_t n) {
    if (size_ + n <= cap_) return;
    const size_t cap = std::max(size_ + n, 2 * cap_);
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (size_ > 0) std::memcpy(bigger.get(), buf_.get(), size_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  // Appends n bytes of unspecified contents and returns where they start.
  char* Extend(size_t n) {
    Reserve(n);
    char* at = buf_.get() + size_;
    size_ += n;
    return at;
  }
  void Truncate(size_t n) { size_ = std::min(size_, n); }

 private:
  std::unique_ptr<char[]> buf_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

struct TableOptions {
  std::string name;
  int dim = 17;
  float init_stddev = 0.01f;
  uint64_t seed = 0;
  int num_stripes = 256;  // rounded up to a power of two
  EvPolicy ev;            // admission and eviction (ps/ev_policy.h)
  // The shard's budget every table charges its bytes to; null: unbounded.
  MemoryBudget* budget = nullptr;
  // Keep the keys of evicted rows until the next save, so an incremental
  // checkpoint can record them (else a restored chain would bring them back).
  bool track_evictions = false;
};

// A sweep's rules: which rows it drops.
struct SweepRule {
  bool ttl = false;  // not pushed for more than steps_to_live steps
  bool l2 = false;   // half squared L2 norm below l2_threshold
  // Budget: rows whose BudgetValue is below this go; 0: none.
  uint64_t below_value = 0;
};

// Per-row bookkeeping kept for feature admission and eviction. Trivial so it
// can live in the row's float storage (and in checkpoints, as it is).
//
// last_step keeps the low 32 bits of the step, and every comparison of two
// steps is made modulo 2^32, so a job runs past step 2^32 - 1 like any other
// step; rows compare correctly while they are less than 2^31 steps apart.
// Every value of both fields is a live row's: which positions are freed is
// the arena's to say (RowArena::IsFreed), never a marker value here.
struct RowMeta {
  uint32_t frequency;  // pushes that touched the row (saturating)
  uint32_t last_step;  // global step of the last push (low 32 bits)
};
// Step a is after step b, both given modulo 2^32.
inline bool StepAfter(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

class EmbeddingTable {
 public:
  EmbeddingTable(const TableOptions& options, const Optimizer* optimizer);
  ~EmbeddingTable();

  const TableOptions& options() const { return options_; }
  int dim() const { return options_.dim; }
  // Floats of optimizer state per row.
  int slot_floats() const { return slot_floats_; }

  // Copies the rows of keys[0..n) into out[n * dim], creating missing rows.
  // With create_missing false a missing key yields its initial values and the
  // table is unchanged. With an admission or eviction policy a pull never
  // creates rows, and a row dead at `global_step` (steps_to_live) reads as
  // missing.
  void Pull(const uint64_t* keys, size_t n, float* out, bool create_missing = true,
            int64_t global_step = 0);

  // Applies grads[n * dim] to the rows of keys[0..n) with the optimizer,
  // creating missing rows first (those the admission filter admits, see
  // ps/ev_policy.h; the gradient of a key not admitted is dropped).
  // `global_step` is the step the push counts as. Gradients must already be
  // validated (finite, right size).
  void Push(const uint64_t* keys, size_t n, const float* grads, int64_t global_step);

  // ---- admission and eviction (ps/ev_policy.h)
  //
  // Drops the rows `rule` selects, stripe by stripe, holding a stripe's
  // lock for at most kSweepChunkRows rows at a time. Returns the rows
  // dropped; *longest_hold_ms (if given) gets the longest hold.
  uint64_t Sweep(int64_t global_step, const SweepRule& rule, double* longest_hold_ms = nullptr);
  // The value the memory budget ranks a row by: smaller goes first.
  static uint64_t BudgetValue(RowMeta m, BudgetOrder order) {
    return (static_cast<uint64_t>(m.last_step) << 32) |
           (order == BudgetOrder::kRecentThenFrequent ? m.frequency : 0);
  }
  // Appends the BudgetValue of up to `per_stripe` rows of each stripe.
  void SampleBudgetValues(int per_stripe, std::vector<uint64_t>* out) const;
  EvCounters counters() const;
  // Bytes of rows allocated but not in use (evicted rows, a chunk's rest).
  size_t SpareBytes() const;
  // Bytes of the admission filter (included in MemoryBytes).
  size_t FilterBytes() const;
  // Counter filter: forgets the keys not sighted since the previous call
  // (AdmissionFilter::ShedUnsighted), giving their bytes back to the budget.
  // Returns the keys forgotten.
  uint64_t ShedPendingCounts();

  // Admission state for checkpoints. Counter filter: fn(key, count) for
  // every key still counted. Bloom filter: each stripe's counters in turn.
  void ForEachPendingKey(const std::function<void(uint64_t key, uint32_t count)>& fn) const;
  void SetPendingCount(uint64_t key, uint32_t count);
  // Bloom: the counters of every stripe, concatenated (stripe order); Add
  // adds saturating (a restore onto another shard count merges files).
  std::vector<uint16_t> BloomCounters() const;
  // False when `counters` has another size than this table's filter.
  bool AddBloomCounters(const std::vector<uint16_t>& counters);
  // The same two, as they were at the open snapshot's cut (empty when the
  // snapshot was begun without admission).
  void ForEachSnapshotPendingKey(const std::function<void(uint64_t key, uint32_t count)>& fn) const;
  std::vector<uint16_t> SnapshotBloomCounters() const;
  // Keys evicted at effective steps in (after, upto] (track_evictions).
  // Evictions after a cut are put after it, so each lands in the first save
  // that no longer holds the row.
  void EvictedKeys(int64_t after, int64_t upto, std::vector<uint64_t>* out) const;
  // Forgets evictions at effective steps <= upto (a save covers them).
  void TrimEvicted(int64_t upto);
  // Removes a key's row, if any (restoring a delta's evictions).
  void Erase(uint64_t key);

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

  // ---- Snapshots: a copy of the table at one moment, without stopping it.
  //
  // BeginSnapshot(step) fixes the table as it is now; the caller guarantees
  // no push is in flight and none with a step <= `step` comes later (the
  // shard's cut). Until a stripe has been copied out, a push about to change
  // one of its rows first keeps the row's old bytes: the extra memory is one
  // copy of each row changed during the save while its stripe waited to be
  // copied. With skewed (real) traffic that is a small fraction of the
  // table; uniform pushes of every row during a long save approach a second
  // table (0.41x measured at 10M rows: bench/checkpoint_bench). Rows a pull
  // creates after the cut are marked as changed after it, so they are left
  // out like rows a push creates.
  //
  // CopySnapshotStripe appends the stripe's rows as they were at the cut to
  // *out as records: key (u64), RowMeta, values[dim], slots[slot_floats],
  // which is exactly a row's bytes; rows created after the cut are left
  // out. It copies kCopyChunkRows rows per hold of the stripe's lock (tens
  // of microseconds), so pulls and pushes barely wait; a row changed before
  // its chunk is copied has kept its old bytes. The stripe then runs without
  // copies. Returns the rows appended, or -1 when `generation` is no longer
  // the current snapshot (a newer cut or EndSnapshot superseded it).
  //
  // Returns the snapshot's generation.
  uint64_t BeginSnapshot(int64_t step);
  // With since_step >= 0 only rows last pushed after that step are copied
  // (an incremental checkpoint's rows).
  // *longest_hold_ms (if given) gets the longest single hold of the lock.
  int64_t CopySnapshotStripe(uint64_t generation, int stripe, RecordBuffer* out,
                             int64_t since_step = -1, double* longest_hold_ms = nullptr);
  // Drops every kept row; idempotent.
  void EndSnapshot();
  int num_stripes() const { return static_cast<int>(stripes_.size()); }
  // The optimizer state at the cut.
  VariableOptState snapshot_opt_state() const;
  // Bytes of a snapshot record.
  size_t record_bytes() const { return sizeof(float) * stride_; }

 private:
  // A row: its key (2 floats' room), RowMeta (2), values[dim], slots. The
  // key lets a snapshot copy rows by arena position, in chunks, without
  // walking the key index (which a concurrent insert may rehash).
  struct Stripe {
    SpinLock mu;
    KeyIndex index;
    RowArena arena;
    // During a snapshot not yet copied out of this stripe: rows at arena
    // positions [copied, at_cut) still to be copied keep their old bytes
    // (stride floats each) here before their first change after the cut.
    bool cow = false;
    uint32_t copied = 0;
    uint32_t at_cut = 0;
    std::vector<float> kept_rows;
    AdmissionFilter filter;
    // The open snapshot has not kept this stripe's filter yet: the first
    // sighting after the cut (or the saver) copies it into
    // snapshot_filters_[index] first, so the cut itself copies nothing.
    bool filter_cow = false;
    int position = 0;  // in stripes_
    size_t charged = 0;                                 // bytes charged to the budget
    int64_t last_cut = -1;                              // step of the newest BeginSnapshot
    std::vector<std::pair<uint64_t, int64_t>> evicted;  // (key, effective step)
    explicit Stripe(int stride) : arena(stride) {}
  };
  enum class Why { kTtl, kL2, kBudget };
  static constexpr int kKeyFloats = 2;
  static constexpr int kHeaderFloats = kKeyFloats + 2;  // key + RowMeta
  static constexpr uint32_t kCopyChunkRows = 1024;
  static constexpr uint32_t kSweepChunkRows = 1024;
  static RowMeta MetaOf(const float* row) {
    RowMeta m;
    std::memcpy(&m, row + kKeyFloats, sizeof(m));
    return m;
  }
  static void SetMeta(float* row, RowMeta m) { std::memcpy(row + kKeyFloats, &m, sizeof(m)); }

  // The top bits of the hash pick the stripe; shifting in two steps keeps a
  // one-stripe table (a shift of 64 would be undefined) at index 0.
  Stripe& StripeOf(uint64_t key) const {
    return *stripes_[(Mix64(key) >> 1) >> (stripe_shift_ - 1)];
  }
  // Returns the row for key in `s` (lock held), creating it if missing;
  // *created tells which.
  // A row created for a restore (init false) is left uninitialised: the
  // caller overwrites all of it.
  float* FindOrCreate(Stripe& s, uint64_t key, uint32_t* index = nullptr, bool init = true);
  // Before a push changes row `r` of stripe `s` (lock held) during a snapshot.
  void KeepForSnapshot(Stripe& s, uint32_t r, const float* row);
  void InitRow(uint64_t key, float* row) const;
  bool Expired(RowMeta m, uint32_t step32) const {
    return options_.ev.steps_to_live > 0 &&
           static_cast<int32_t>(step32 - m.last_step) > options_.ev.steps_to_live;
  }
  bool BelowL2(const float* row) const;
  // Frees row r (key `key`) of `s` (lock held); keeps its bytes first for an
  // open snapshot that has not copied it yet.
  void EvictRow(Stripe& s, uint64_t key, uint32_t r, Why why, int64_t step);
  // Frees the least valuable sixteenth of the stripe's rows (budget).
  void EvictLeastValuable(Stripe& s, int64_t step);
  // Charges the stripe's change in bytes to the budget.
  void Recharge(Stripe& s);
  // The counter filter of `s` (lock held) forgets its keys not sighted since
  // its last shed; the bytes go back to the budget. Returns the keys.
  uint64_t ShedUnsightedCounts(Stripe& s);
  // A push's new row (lock held), making room under the budget first.
  float* CreateRow(Stripe& s, uint64_t key, int64_t step, uint32_t* index);
  // Position r of `s` changed after the open snapshot's cut (a push after
  // it, or freed): the snapshot's copy is among the kept rows, or the row
  // is not in the snapshot.
  bool ChangedSinceCut(const Stripe& s, uint32_t r) const {
    return s.arena.IsFreed(r) || StepAfter(MetaOf(s.arena.Row(r)).last_step, snapshot_step32_);
  }

  TableOptions options_;
  const Optimizer* optimizer_;
  int slot_floats_;
  int stride_;
  int stripe_shift_;
  std::vector<std::unique_ptr<Stripe>> stripes_;
  mutable std::mutex opt_mu_;
  VariableOptState opt_state_;
  // The current snapshot; written only with every stripe lock's holder
  // excluded by the cut (BeginSnapshot), read under a stripe's lock.
  std::atomic<uint64_t> snapshot_generation_{0};
  uint32_t snapshot_step32_ = 0;
  VariableOptState snapshot_opt_state_;
  // Each stripe's admission filter at the cut, copied on write: entry i is
  // written under stripe i's lock (by the first sighting after the cut);
  // the vector is sized at the cut and freed at EndSnapshot, under the mutex.
  mutable std::mutex snapshot_filters_mu_;
  std::vector<AdmissionFilter> snapshot_filters_;
  // Stripe s's filter as it was at the cut (lock of s held, and the mutex).
  const AdmissionFilter& FilterAtCut(const Stripe& s) const {
    return s.filter_cow ? s.filter : snapshot_filters_[s.position];
  }
  void KeepFilterForSnapshot(Stripe& s) {
    if (!s.filter_cow) return;
    snapshot_filters_[s.position] = s.filter;
    s.filter_cow = false;
  }
  std::atomic<uint64_t> created_{0}, admitted_{0}, filtered_reads_{0}, filtered_grads_{0};
  std::atomic<uint64_t> evicted_ttl_{0}, evicted_l2_{0}, evicted_budget_{0}, pending_shed_{0};
};

}  // namespace deepfm::ps

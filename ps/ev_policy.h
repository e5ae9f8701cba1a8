// Feature admission and eviction for embedding tables: DeepRec's
// EmbeddingVariable options (CounterFilter, CBFFilter, GlobalStepEvict,
// L2WeightEvict) and a shard-wide memory budget.
//
// Admission: a key that has no row is counted each time a push touches it
// (one sighting per push: a worker's push carries each key once). At the
// filter_freq-th sighting the row is created with the key's deterministic
// initial value and that push's gradient is applied; before it, the push's
// gradient for the key is dropped and pulls read the initial value the row
// would start with, so a key reads the same value before and at admission.
//
// Eviction: a row not pushed for more than steps_to_live global steps is dead
// from that step on, whenever the background sweep frees it: a pull reads its
// initial value, a push starts it again (through admission). A row whose
// half squared L2 norm is below l2_threshold is dropped by each sweep (every
// evict_interval_steps and at each save's cut).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace deepfm::ps {

enum class FilterKind : uint8_t { kNone = 0, kCounter = 1, kBloom = 2 };

// Which rows the memory budget drops first.
enum class BudgetOrder : uint8_t {
  kRecentThenFrequent = 0,  // least recently pushed first, then least frequent (the default)
  kRecent = 1,              // plain LRU: least recently pushed first, ties in arena order
};

struct EvPolicy {
  uint32_t filter_freq = 0;  // 0 or 1: every key gets a row at its first push
  FilterKind filter = FilterKind::kCounter;
  double bloom_fp_rate = 0.01;
  uint64_t bloom_max_elements = 1u << 22;  // expected distinct keys per table per shard
  int64_t steps_to_live = 0;               // 0: rows live forever
  float l2_threshold = 0;                  // 0: no L2 eviction
  int64_t evict_interval_steps = 1000;     // background sweeps
  BudgetOrder budget_order = BudgetOrder::kRecentThenFrequent;

  bool admission() const { return filter_freq > 1 && filter != FilterKind::kNone; }
  bool sweeps() const { return steps_to_live > 0 || l2_threshold > 0; }
  bool any() const { return admission() || sweeps(); }
};

// Checks ranges and names the flag at fault.
Status ValidateEvPolicy(const EvPolicy& p);
FilterKind ParseFilterKind(const std::string& s, bool* ok);
const char* FilterKindName(FilterKind k);

// DeepRec's counting Bloom filter sizing for n elements at false-positive
// probability p: k = ceil(|log2 p|) hashes, m = ceil(|ln p| * n / (ln 2)^2)
// counters.
struct BloomSize {
  uint64_t counters = 0;
  uint32_t hashes = 0;
};
BloomSize BloomSizing(double fp_rate, uint64_t max_elements);

// The bytes a shard's tables (rows, key indexes, admission state) may hold;
// shared by every table of the shard. Reserve fails when it would pass the
// limit; Charge never fails (growth that must happen: a push is never
// refused for memory).
class MemoryBudget {
 public:
  explicit MemoryBudget(int64_t limit_bytes) : limit_(limit_bytes) {}
  int64_t limit() const { return limit_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  bool Fits(int64_t more) const { return used() + more <= limit_; }
  void Charge(int64_t delta) {
    const int64_t now = used_.fetch_add(delta, std::memory_order_relaxed) + delta;
    int64_t p = peak_.load(std::memory_order_relaxed);
    while (now > p && !peak_.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
};

// What a table counted since it was created (not saved in checkpoints).
struct EvCounters {
  uint64_t created = 0;         // rows created by pushes and pulls (not restores)
  uint64_t admitted = 0;        // rows created by admission (after filter_freq sightings)
  uint64_t filtered_reads = 0;  // pulled keys that had no row while a filter was on
  uint64_t filtered_grads = 0;  // pushed keys whose gradient was dropped (not yet admitted)
  uint64_t evicted_ttl = 0;
  uint64_t evicted_l2 = 0;
  uint64_t evicted_budget = 0;
  uint64_t pending_shed = 0;    // counter-filter keys forgotten under the budget
};

}  // namespace deepfm::ps

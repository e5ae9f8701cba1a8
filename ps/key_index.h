// Open-addressing (linear probing) map from uint64 key to uint32 row index.
// Not thread-safe: each table stripe owns one under its lock. Keeps load
// factor at most 0.75 so a probe sequence stays short; 12 bytes per slot.
//
// Growth is incremental: a doubling allocates the new slots and then each
// Insert moves at most kMovesPerInsert of the old slots' entries, so no single
// Insert (and no push holding the stripe's lock) pays for moving the whole
// index. While a doubling is under way the entries live in two slot arrays
// (up to 1.5 times the memory of the grown index, for C/4 inserts); every
// operation sees one map. An index whose owner charges each doubling to a
// budget as one event (the counter filter) grows at once instead.
//
// A free slot reads as zero (values are stored plus one), so new slots need
// no fill: a large slot array is mapped from the kernel already zeroed and
// populated in one call. Filling it through page faults (std::vector's
// zeroing) cost about 3 ms a doubling of 2^16 slots on a 2-core VM, where a
// fault costs several microseconds.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "common/hash.h"

namespace deepfm::ps {

namespace key_index_detail {

// Slot arrays of at least this size are mapped from the kernel directly,
// zeroed and populated without a fault per page (malloc may hand out reused
// heap memory, which calloc then clears by hand).
inline constexpr size_t kMapBytes = size_t{64} << 10;

struct FreeDeleter {
  size_t bytes = 0;
  void operator()(void* p) const {
    if (bytes >= kMapBytes) {
      munmap(p, bytes);
    } else {
      std::free(p);
    }
  }
};
template <typename T>
using Array = std::unique_ptr<T[], FreeDeleter>;

template <typename T>
inline Array<T> Zeroed(size_t n) {
  const size_t bytes = n * sizeof(T);
  void* p = nullptr;
  if (bytes >= kMapBytes) {
    p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
             -1, 0);
    if (p == MAP_FAILED) p = nullptr;
  } else {
    p = std::calloc(n, sizeof(T));
  }
  if (!p) throw std::bad_alloc();
  return Array<T>(static_cast<T*>(p), FreeDeleter{bytes});
}

}  // namespace key_index_detail

class KeyIndex {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;
  // Old slots visited per Insert while growing. A doubling starts at 3/4 of
  // C slots and the next one is due at 3/4 of 2C, so at least 3C/4 inserts
  // come between: visiting 4 slots an insert finishes in C/4 of them.
  static constexpr size_t kMovesPerInsert = 4;

  enum class Growth { kIncremental, kAtOnce };

  explicit KeyIndex(Growth growth = Growth::kIncremental)
      : moves_per_insert_(growth == Growth::kIncremental ? kMovesPerInsert : SIZE_MAX) {
    cur_.Reset(16);
  }

  size_t size() const { return size_; }
  size_t capacity() const { return cur_.slots(); }
  // A doubling has started and not all old entries have moved yet.
  bool growing() const { return old_.slots() != 0; }
  // Entries moved from old slots to new ones since construction: growth's
  // whole cost, for tests that bound it per Insert.
  uint64_t entries_moved() const { return moved_; }

  // Row of `key`, or kEmpty.
  uint32_t Find(uint64_t key) const {
    const Slot at = Lookup(key);
    return at.slots ? at.slots->Value(at.i) : kEmpty;
  }

  // Calls fn(&value) on the value stored for `key` and stores what fn left
  // there (never kEmpty); false when the key is absent.
  template <typename Fn>  // void Fn(uint32_t* value)
  bool Update(uint64_t key, Fn&& fn) {
    const Slot at = Lookup(key);
    if (!at.slots) return false;
    uint32_t v = at.slots->Value(at.i);
    fn(&v);
    const_cast<Slots*>(at.slots)->Set(at.i, key, v);
    return true;
  }

  // Bytes the next Insert adds to MemoryBytes (a doubling), or 0: the new
  // slots, less the old ones when they are freed at once.
  size_t GrowthBytes() const {
    if (growing() || !Full(size_ + 1)) return 0;
    return cur_.slots() * (moves_per_insert_ == SIZE_MAX ? 1 : 2) * kSlotBytes;
  }

  // Drops every entry and shrinks to the initial capacity.
  void Clear() {
    old_.Release();
    cur_.Release();
    cur_.Reset(16);
    size_ = 0;
  }

  // Inserts key -> row; the key must be absent.
  void Insert(uint64_t key, uint32_t row) {
    // A full index while growing is never reached with kMovesPerInsert >=
    // 4/3 (see there); handled so that the load factor holds regardless.
    if (growing()) MoveSome(Full(size_ + 1) ? old_.slots() : moves_per_insert_);
    if (!growing() && Full(size_ + 1)) {
      StartGrowth();
      MoveSome(moves_per_insert_);
    }
    cur_.Set(cur_.Probe(key), key, row);
    ++size_;
  }

  // Removes key and returns its row, or kEmpty.
  uint32_t Erase(uint64_t key) {
    uint32_t row = cur_.Erase(key);
    if (row == kEmpty && growing()) {
      const size_t j = old_.Probe(key);
      if (old_.Used(j) && !Moved(j)) row = old_.Erase(key);
    }
    if (row != kEmpty) --size_;
    return row;
  }

  template <typename Fn>  // Fn(uint64_t key, uint32_t row)
  void ForEach(Fn&& fn) const {
    for (size_t i = 0; i < cur_.slots(); ++i) {
      if (cur_.Used(i)) fn(cur_.keys[i], cur_.Value(i));
    }
    for (size_t i = 0; i < old_.slots(); ++i) {
      if (old_.Used(i) && !Moved(i)) fn(old_.keys[i], old_.Value(i));
    }
  }

  // Keeps the entries for which fn(key, &row) returns true (fn may change
  // the row value) and drops the rest, rebuilding the index at the smallest
  // capacity that holds the survivors at most 3/8 full (room to grow before
  // the next doubling), so dropping entries returns their memory; never at
  // a larger capacity than now.
  template <typename Fn>  // bool Fn(uint64_t key, uint32_t* row)
  void KeepIf(Fn&& fn) {
    std::vector<uint64_t> keys;
    std::vector<uint32_t> rows;
    ForEach([&](uint64_t key, uint32_t r) {
      if (fn(key, &r)) {
        keys.push_back(key);
        rows.push_back(r);
      }
    });
    size_t cap = 16;
    while (keys.size() * 8 > cap * 3 && cap < cur_.slots()) cap *= 2;
    old_.Release();
    cur_.Release();
    cur_.Reset(cap);
    size_ = keys.size();
    for (size_t i = 0; i < keys.size(); ++i) cur_.Set(cur_.Probe(keys[i]), keys[i], rows[i]);
  }

  size_t MemoryBytes() const { return cur_.MemoryBytes() + old_.MemoryBytes(); }

 private:
  static constexpr size_t kSlotBytes = sizeof(uint64_t) + sizeof(uint32_t);

  struct Slots {
    key_index_detail::Array<uint64_t> keys;  // meaningful where Used
    key_index_detail::Array<uint32_t> rows;  // value + 1; 0 marks a free slot
    size_t n = 0;
    size_t mask = 0;

    Slots() = default;
    Slots(Slots&&) = default;
    Slots& operator=(Slots&&) = default;
    // A copy (a snapshot's filter) copies the slot bytes as they are.
    Slots(const Slots& o) { *this = o; }
    Slots& operator=(const Slots& o) {
      if (this == &o) return *this;
      if (o.n == 0) {
        Release();
        return *this;
      }
      Reset(o.n);
      std::memcpy(keys.get(), o.keys.get(), n * sizeof(uint64_t));
      std::memcpy(rows.get(), o.rows.get(), n * sizeof(uint32_t));
      return *this;
    }

    size_t slots() const { return n; }
    bool Used(size_t i) const { return rows[i] != 0; }
    uint32_t Value(size_t i) const { return rows[i] - 1; }
    void Set(size_t i, uint64_t key, uint32_t value) {
      keys[i] = key;
      rows[i] = value + 1;
    }
    size_t Home(uint64_t key) const { return Mix64(key ^ 0x2545f4914f6cdd1dULL) & mask; }
    void Reset(size_t cap) {
      keys = key_index_detail::Zeroed<uint64_t>(cap);
      rows = key_index_detail::Zeroed<uint32_t>(cap);
      n = cap;
      mask = cap - 1;
    }
    void Release() {
      keys.reset();
      rows.reset();
      n = mask = 0;
    }
    // The slot holding `key`, or the free slot that ends its probe sequence.
    size_t Probe(uint64_t key) const {
      size_t i = Home(key);
      while (Used(i) && keys[i] != key) i = (i + 1) & mask;
      return i;
    }
    // Backward-shift deletion keeps probe sequences intact without tombstones.
    uint32_t Erase(uint64_t key) {
      const size_t i = Probe(key);
      if (!Used(i)) return kEmpty;
      const uint32_t row = Value(i);
      size_t hole = i;
      for (size_t j = (i + 1) & mask; Used(j); j = (j + 1) & mask) {
        const size_t home = Home(keys[j]);
        // Move j into the hole if its home does not lie cyclically in (hole, j].
        const bool home_in_range =
            hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!home_in_range) {
          keys[hole] = keys[j];
          rows[hole] = rows[j];
          hole = j;
        }
      }
      rows[hole] = 0;
      return row;
    }
    size_t MemoryBytes() const { return n * kSlotBytes; }
  };

  struct Slot {
    const Slots* slots;  // null: absent
    size_t i;
  };

  Slot Lookup(uint64_t key) const {
    if (growing() && !Moved(old_.Home(key))) {
      // An entry whose old home slot is unvisited has not moved (its run
      // from the home onwards is unvisited too), so most keys not yet moved
      // are found with one probe; only keys inserted since the doubling
      // began probe both arrays.
      const size_t j = old_.Probe(key);
      if (old_.Used(j)) return {&old_, j};
      const size_t i = cur_.Probe(key);
      return cur_.Used(i) ? Slot{&cur_, i} : Slot{nullptr, 0};
    }
    const size_t i = cur_.Probe(key);
    if (cur_.Used(i)) return {&cur_, i};
    if (!growing()) return {nullptr, 0};
    const size_t j = old_.Probe(key);
    return old_.Used(j) && !Moved(j) ? Slot{&old_, j} : Slot{nullptr, 0};
  }

  bool Full(size_t entries) const { return entries * 4 > cur_.slots() * 3; }

  // The old slots are visited in cyclic order from a free one, and a visited
  // slot keeps its (now stale) entry, so the old array stays a valid table:
  // its probe sequences are unbroken, an entry found at a visited slot has
  // moved, and one found at an unvisited slot has not. An erase there shifts
  // entries back only within their run, which ends at a free slot no later
  // than the start, so unvisited entries stay unvisited.
  bool Moved(size_t slot) const { return ((slot - start_) & old_.mask) < visited_; }

  void StartGrowth() {
    const size_t cap = cur_.slots() * 2;
    old_ = std::move(cur_);
    cur_ = Slots();
    cur_.Reset(cap);
    start_ = 0;
    while (old_.Used(start_)) ++start_;  // exists: at most 3/4 full
    visited_ = 0;
  }

  void MoveSome(size_t n) {
    for (; n > 0 && visited_ < old_.slots(); --n, ++visited_) {
      const size_t i = (start_ + visited_) & old_.mask;
      if (!old_.Used(i)) continue;
      cur_.Set(cur_.Probe(old_.keys[i]), old_.keys[i], old_.Value(i));
      ++moved_;
    }
    if (visited_ == old_.slots()) old_.Release();
  }

  size_t moves_per_insert_;
  Slots cur_;
  Slots old_;  // being emptied into cur_ while growing(); else empty
  size_t start_ = 0;
  size_t visited_ = 0;  // old slots from start_ whose entries have moved
  size_t size_ = 0;
  uint64_t moved_ = 0;
};

}  // namespace deepfm::ps

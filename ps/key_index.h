// Open-addressing (linear probing) map from uint64 key to uint32 row index.
// Not thread-safe: each table stripe owns one under its lock. Keeps load
// factor at most 0.75 so a probe sequence stays short; 12 bytes per slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/hash.h"

namespace deepfm::ps {

class KeyIndex {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;

  KeyIndex() { Rehash(16); }

  size_t size() const { return size_; }
  size_t capacity() const { return keys_.size(); }

  // Row of `key`, or kEmpty.
  uint32_t Find(uint64_t key) const {
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      if (rows_[i] == kEmpty) return kEmpty;
      if (keys_[i] == key) return rows_[i];
    }
  }

  // The value stored for `key`, changeable in place, or null.
  uint32_t* FindValue(uint64_t key) {
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      if (rows_[i] == kEmpty) return nullptr;
      if (keys_[i] == key) return &rows_[i];
    }
  }

  // Bytes the next Insert adds (a doubling), or 0.
  size_t GrowthBytes() const {
    return (size_ + 1) * 4 > keys_.size() * 3 ? keys_.size() * (sizeof(uint64_t) + sizeof(uint32_t))
                                              : 0;
  }

  // Drops every entry and shrinks to the initial capacity.
  void Clear() {
    std::vector<uint64_t>().swap(keys_);
    std::vector<uint32_t>().swap(rows_);
    Rehash(16);
  }

  // Inserts key -> row; the key must be absent.
  void Insert(uint64_t key, uint32_t row) {
    if ((size_ + 1) * 4 > keys_.size() * 3) Rehash(keys_.size() * 2);
    size_t i = Home(key);
    while (rows_[i] != kEmpty) i = (i + 1) & mask_;
    keys_[i] = key;
    rows_[i] = row;
    ++size_;
  }

  // Removes key and returns its row, or kEmpty. Backward-shift deletion keeps
  // probe sequences intact without tombstones.
  uint32_t Erase(uint64_t key) {
    size_t i = Home(key);
    for (;; i = (i + 1) & mask_) {
      if (rows_[i] == kEmpty) return kEmpty;
      if (keys_[i] == key) break;
    }
    const uint32_t row = rows_[i];
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; rows_[j] != kEmpty; j = (j + 1) & mask_) {
      const size_t home = Home(keys_[j]);
      // Move j into the hole if its home does not lie cyclically in (hole, j].
      const bool home_in_range =
          hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!home_in_range) {
        keys_[hole] = keys_[j];
        rows_[hole] = rows_[j];
        hole = j;
      }
    }
    rows_[hole] = kEmpty;
    --size_;
    return row;
  }

  template <typename Fn>  // Fn(uint64_t key, uint32_t row)
  void ForEach(Fn&& fn) const {
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (rows_[i] != kEmpty) fn(keys_[i], rows_[i]);
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
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (rows_[i] == kEmpty) continue;
      uint32_t row = rows_[i];
      if (fn(keys_[i], &row)) {
        keys.push_back(keys_[i]);
        rows.push_back(row);
      }
    }
    size_t cap = 16;
    while (keys.size() * 8 > cap * 3 && cap < keys_.size()) cap *= 2;
    std::vector<uint64_t>().swap(keys_);
    std::vector<uint32_t>().swap(rows_);
    Rehash(cap);
    for (size_t i = 0; i < keys.size(); ++i) Insert(keys[i], rows[i]);
  }

  size_t MemoryBytes() const {
    return keys_.capacity() * sizeof(uint64_t) + rows_.capacity() * sizeof(uint32_t);
  }

 private:
  size_t Home(uint64_t key) const { return Mix64(key ^ 0x2545f4914f6cdd1dULL) & mask_; }

  void Rehash(size_t cap) {
    std::vector<uint64_t> old_keys(cap);
    std::vector<uint32_t> old_rows(cap, kEmpty);
    old_keys.swap(keys_);
    old_rows.swap(rows_);
    mask_ = cap - 1;
    size_ = 0;
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_rows[i] != kEmpty) {
        size_t j = Home(old_keys[i]);
        while (rows_[j] != kEmpty) j = (j + 1) & mask_;
        keys_[j] = old_keys[i];
        rows_[j] = old_rows[i];
        ++size_;
      }
    }
  }

  std::vector<uint64_t> keys_;
  std::vector<uint32_t> rows_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace deepfm::ps

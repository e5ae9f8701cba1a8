// Fixed-stride float rows in chunks: a row's address never moves once
// allocated (so a row can be updated in place while the index grows), and
// freed rows are reused, most recently freed first (for eviction). Chunks grow from 16 rows to
// kMaxChunkRows, so an almost empty arena (one of a table's many stripes)
// costs little, and a full one wastes at most one small, partly filled chunk.
// Each chunk has one word of freed-position bits (a chunk holds at most 64
// rows), so what a row's bytes hold never has to say whether it is freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace deepfm::ps {

class RowArena {
 public:
  static constexpr uint32_t kMinChunkRows = 16;  // chunk c < kGeometric holds 16 << c rows
  static constexpr uint32_t kGeometric = 3;      // 16, 32, 64, then 64 each
  static constexpr uint32_t kMaxChunkRows = kMinChunkRows << (kGeometric - 1);
  static constexpr uint32_t kGeometricRows = kMinChunkRows * ((1u << kGeometric) - 1);

  explicit RowArena(int stride_floats) : stride_(stride_floats) {}

  int stride() const { return stride_; }
  // Returns the index of a row with unspecified contents.
  uint32_t Allocate() {
    if (free_head_ != kNoRow) {
      const uint32_t r = free_head_;
      std::memcpy(&free_head_, Row(r), sizeof(free_head_));
      --free_count_;
      const Place p = Locate(r);
      freed_[p.chunk] &= ~(uint64_t{1} << p.offset);
      return r;
    }
    if (next_ == capacity_) {
      const uint32_t rows = ChunkRows(static_cast<uint32_t>(chunks_.size()));
      chunks_.emplace_back(new float[static_cast<size_t>(rows) * stride_]);
      freed_.push_back(0);
      capacity_ += rows;
    }
    return next_++;
  }
  // The freed rows form a list through their own bytes (a freed row's first
  // four bytes name the next), so freeing never allocates and an arena costs
  // nothing per row beyond the rows: a memory budget sees all of an arena's
  // growth in GrowthBytes.
  void Free(uint32_t row) {
    std::memcpy(Row(row), &free_head_, sizeof(free_head_));
    free_head_ = row;
    ++free_count_;
    const Place p = Locate(row);
    freed_[p.chunk] |= uint64_t{1} << p.offset;
  }
  // Row r (< allocated()) was freed and not handed out again.
  bool IsFreed(uint32_t row) const {
    const Place p = Locate(row);
    return (freed_[p.chunk] >> p.offset) & 1;
  }
  // Bytes the next Allocate adds (a new chunk), or 0 when a row is free.
  size_t GrowthBytes() const {
    if (free_head_ != kNoRow || next_ < capacity_) return 0;
    return static_cast<size_t>(ChunkRows(static_cast<uint32_t>(chunks_.size()))) * stride_ *
               sizeof(float) +
           sizeof(uint64_t);
  }
  // Rows allocated and not in use: freed, or never handed out.
  size_t spare_rows() const { return free_count_ + (capacity_ - next_); }
  // Rows ever allocated: indices [0, allocated()) are in use or freed.
  uint32_t allocated() const { return next_; }
  float* Row(uint32_t row) { return const_cast<float*>(std::as_const(*this).Row(row)); }
  const float* Row(uint32_t row) const {
    const Place p = Locate(row);
    return chunks_[p.chunk].get() + static_cast<size_t>(p.offset) * stride_;
  }
  size_t MemoryBytes() const {
    return static_cast<size_t>(capacity_) * stride_ * sizeof(float) +
           chunks_.capacity() * sizeof(void*) + freed_.capacity() * sizeof(uint64_t);
  }

 private:
  static_assert(kMaxChunkRows <= 64, "a chunk's freed bits fit one word");
  struct Place {
    uint32_t chunk, offset;
  };
  static Place Locate(uint32_t row) {
    if (row < kGeometricRows) {
      const uint32_t biased = row + kMinChunkRows;  // chunk c starts at 16 * (2^c - 1)
      const uint32_t chunk = 31 - __builtin_clz(biased) - 4;
      return {chunk, biased - (kMinChunkRows << chunk)};
    }
    return {kGeometric + (row - kGeometricRows) / kMaxChunkRows,
            (row - kGeometricRows) % kMaxChunkRows};
  }

  static uint32_t ChunkRows(uint32_t chunk) {
    return chunk < kGeometric ? kMinChunkRows << chunk : kMaxChunkRows;
  }

  int stride_;
  uint32_t next_ = 0;
  uint32_t capacity_ = 0;
  std::vector<std::unique_ptr<float[]>> chunks_;
  static constexpr uint32_t kNoRow = 0xffffffffu;
  uint32_t free_head_ = kNoRow;  // the most recently freed row
  uint32_t free_count_ = 0;
  std::vector<uint64_t> freed_;  // per chunk: bit o set = row at offset o is freed
};

}  // namespace deepfm::ps

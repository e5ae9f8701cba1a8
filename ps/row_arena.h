// Fixed-stride float rows in chunks: a row's address never moves once
// allocated (so a row can be updated in place while the index grows), and
// freed rows are reused (for eviction). Chunks grow from 16 rows to
// kMaxChunkRows, so an almost empty arena (one of a table's many stripes)
// costs little, and a full one wastes at most one small, partly filled chunk.
#pragma once

#include <cstddef>
#include <cstdint>
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
    if (!free_.empty()) {
      const uint32_t r = free_.back();
      free_.pop_back();
      return r;
    }
    if (next_ == capacity_) {
      const uint32_t rows = ChunkRows(static_cast<uint32_t>(chunks_.size()));
      chunks_.emplace_back(new float[static_cast<size_t>(rows) * stride_]);
      capacity_ += rows;
      // Room to free every row: freeing (eviction) then never allocates, so
      // a memory budget sees all of an arena's growth here. Nothing is
      // free now (a chunk is added only then), so nothing is copied.
      free_.reserve(capacity_);
    }
    return next_++;
  }
  void Free(uint32_t row) { free_.push_back(row); }
  // Bytes the next Allocate adds (a new chunk), or 0 when a row is free.
  size_t GrowthBytes() const {
    if (!free_.empty() || next_ < capacity_) return 0;
    return static_cast<size_t>(ChunkRows(static_cast<uint32_t>(chunks_.size()))) *
           (stride_ * sizeof(float) + sizeof(uint32_t));
  }
  // Rows allocated and not in use: freed, or never handed out.
  size_t spare_rows() const { return free_.size() + (capacity_ - next_); }
  // Rows ever allocated: indices [0, allocated()) are in use or freed.
  uint32_t allocated() const { return next_; }
  float* Row(uint32_t row) { return const_cast<float*>(std::as_const(*this).Row(row)); }
  const float* Row(uint32_t row) const {
    uint32_t chunk, offset;
    if (row < kGeometricRows) {
      const uint32_t biased = row + kMinChunkRows;  // chunk c starts at 16 * (2^c - 1)
      chunk = 31 - __builtin_clz(biased) - 4;
      offset = biased - (kMinChunkRows << chunk);
    } else {
      chunk = kGeometric + (row - kGeometricRows) / kMaxChunkRows;
      offset = (row - kGeometricRows) % kMaxChunkRows;
    }
    return chunks_[chunk].get() + static_cast<size_t>(offset) * stride_;
  }
  size_t MemoryBytes() const {
    return static_cast<size_t>(capacity_) * stride_ * sizeof(float) +
           free_.capacity() * sizeof(uint32_t) + chunks_.capacity() * sizeof(void*);
  }

 private:
  static uint32_t ChunkRows(uint32_t chunk) {
    return chunk < kGeometric ? kMinChunkRows << chunk : kMaxChunkRows;
  }

  int stride_;
  uint32_t next_ = 0;
  uint32_t capacity_ = 0;
  std::vector<std::unique_ptr<float[]>> chunks_;
  std::vector<uint32_t> free_;
};

}  // namespace deepfm::ps

// Named dense tensors with their optimizer slots and per-tensor optimizer
// state. A shard holds either a whole variable or one contiguous slice of a
// partitioned one (common/dense_partition.h): its values, slots and pushes
// cover just that slice. The first registration of a name fixes its shape,
// slice and initial values; a later one with the same shape and slice gets
// the existing tensor, and one with another is refused (never a silent
// overwrite).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "ps/optimizer.h"

namespace deepfm::ps {

// How a push changes a variable: the optimizer applies a gradient, or (batch
// normalisation's moving statistics) the value follows the pushed batch
// statistic, v <- v - (v - pushed) * (1 - momentum), with no optimizer.
struct DenseUpdate {
  bool moving_average = false;
  float momentum = 0;
  bool operator==(const DenseUpdate& o) const {
    return moving_average == o.moving_average && (!moving_average || momentum == o.momentum);
  }
  std::string ToString() const;
};

struct DenseVariable {
  std::string name;
  std::vector<int64_t> shape;  // the whole variable's
  DenseUpdate update;
  int64_t offset = 0;          // of values[0] in the flattened whole
  std::vector<float> values;   // the slice this store holds
  std::vector<float> slots;
  VariableOptState opt_state;
  mutable std::mutex mu;  // one push or pull at a time per tensor
};

class DenseStore {
 public:
  // Limits of one variable: 2^28 floats (1 GiB of values) and rank 8 (what
  // a checkpoint records).
  static constexpr int64_t kMaxElements = int64_t{1} << 28;
  static constexpr size_t kMaxRank = 8;

  explicit DenseStore(const Optimizer* optimizer) : optimizer_(optimizer) {}

  // Checks a shape (rank, dimensions > 0, element limit); *elements gets
  // the product.
  static Status CheckShape(const std::string& name, const std::vector<int64_t>& shape,
                           int64_t* elements);

  // Registers the slice [offset, offset + size) of `name`. init may be empty
  // (zeros) or hold `size` values. *created tells whether this call created it.
  // A variable registered again must have the same update.
  Status Register(const std::string& name, const std::vector<int64_t>& shape, int64_t offset,
                  int64_t size, const std::vector<float>& init, uint32_t* id, bool* created,
                  const DenseUpdate& update = {});
  // Checks a moving average's momentum: in [0, 1).
  static Status CheckUpdate(const std::string& name, const DenseUpdate& update);
  // The whole variable.
  Status Register(const std::string& name, const std::vector<int64_t>& shape,
                  const std::vector<float>& init, uint32_t* id, bool* created);

  size_t num_variables() const;
  // Number of floats in variable `id`, or -1 if there is none.
  int64_t NumElements(uint32_t id) const;
  const DenseVariable* Get(uint32_t id) const;

  Status Pull(uint32_t id, float* out) const;
  // grads must hold NumElements(id) finite values (a moving average's: the
  // batch statistics).
  Status Push(uint32_t id, const float* grads, int64_t global_step);

  // Sets values, slots and optimizer state of an existing variable (restore).
  Status Assign(uint32_t id, const std::vector<float>& values, const std::vector<float>& slots,
                const VariableOptState& state);

  uint64_t TotalElements() const;

  template <typename Fn>  // Fn(uint32_t id, const DenseVariable&) under the variable's lock
  void ForEach(Fn&& fn) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t i = 0; i < vars_.size(); ++i) {
      std::lock_guard<std::mutex> vlock(vars_[i]->mu);
      fn(i, *vars_[i]);
    }
  }

 private:
  const Optimizer* optimizer_;
  mutable std::mutex mu_;  // guards the registry, not the values
  std::vector<std::unique_ptr<DenseVariable>> vars_;
  std::unordered_map<std::string, uint32_t> by_name_;
};

}  // namespace deepfm::ps

// Server-side optimizers (DESIGN.md §4). Storage never knows optimizer math:
// an optimizer says how many slot floats a row of a given width needs, how to
// initialise them, and how to apply one gradient to one row in place.
//
// Updates are lazy: only rows named in a push are touched.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace deepfm::ps {

enum class OptimizerType { kSgd, kAdam, kAdamAsync, kAdagrad, kAdagradDecay };

struct OptimizerOptions {
  OptimizerType type = OptimizerType::kAdamAsync;
  float learning_rate = 0.001f;
  // adam / adamasync
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  // adagrad / adagraddecay: initial accumulator, and the floor after a decay.
  float initial_accumulator = 0.1f;
  // adagraddecay
  int64_t decay_period = 100000;
  float decay_rate = 0.9f;
};

Status ParseOptimizerType(const std::string& name, OptimizerType* type);
std::string OptimizerName(OptimizerType type);

// State kept once per variable (a table or a dense tensor), not per row:
// AdamAsync's beta powers. Guarded by the variable's owner.
struct VariableOptState {
  // Set to beta1 and beta2 by the first push. "Started" is its own flag: a
  // power of 0 is a legal value (beta1 = 0, or an underflow after many steps
  // with a small beta) and must not restart bias correction.
  bool started = false;
  double beta1_power = 0;
  double beta2_power = 0;
};

// Constants of one push to one variable, computed once and shared by every
// row the push touches.
struct PushConstants {
  float lr = 0;            // learning rate, or Adam's bias-corrected step size
  int64_t global_step = 0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual OptimizerType type() const = 0;
  // Slot floats a row of `width` parameters needs.
  virtual int SlotFloats(int width) const = 0;
  virtual void InitSlots(float* slots, int width) const = 0;
  // Computes the push's constants and advances per-variable state (once per
  // applied push). `global_step` is the step this push counts as, >= 1.
  virtual PushConstants BeginPush(VariableOptState* state, int64_t global_step) const = 0;
  // Applies gradient g to w (both `width` long) with the row's slots.
  virtual void Apply(float* w, float* slots, const float* g, int width,
                     const PushConstants& c) const = 0;

  const OptimizerOptions& options() const { return options_; }

  explicit Optimizer(const OptimizerOptions& o) : options_(o) {}

 protected:
  OptimizerOptions options_;
};

// Validates the options (positive rate, betas in [0,1), ...) and builds one.
Status MakeOptimizer(const OptimizerOptions& options, std::unique_ptr<Optimizer>* out);

}  // namespace deepfm::ps

#include "ps/optimizer.h"

#include <algorithm>
#include <cmath>

namespace deepfm::ps {
namespace {

class Sgd final : public Optimizer {
 public:
  using Optimizer::Optimizer;
  OptimizerType type() const override { return OptimizerType::kSgd; }
  int SlotFloats(int) const override { return 0; }
  void InitSlots(float*, int) const override {}
  PushConstants BeginPush(VariableOptState*, int64_t step) const override {
    return {options_.learning_rate, step};
  }
  void Apply(float* w, float*, const float* g, int width, const PushConstants& c) const override {
    for (int i = 0; i < width; ++i) w[i] -= c.lr * g[i];
  }
};

// Slots: m[width], v[width]. Adam and AdamAsync differ only in where the
// bias-correction powers come from.
class AdamBase : public Optimizer {
 public:
  using Optimizer::Optimizer;
  int SlotFloats(int width) const override { return 2 * width; }
  void InitSlots(float* slots, int width) const override {
    std::fill(slots, slots + 2 * width, 0.0f);
  }
  void Apply(float* w, float* slots, const float* g, int width,
             const PushConstants& c) const override {
    float* m = slots;
    float* v = slots + width;
    const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
    for (int i = 0; i < width; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      w[i] -= c.lr * m[i] / (std::sqrt(v[i]) + eps);
    }
  }

 protected:
  float Alpha(double b1_power, double b2_power) const {
    return static_cast<float>(options_.learning_rate * std::sqrt(1.0 - b2_power) /
                              (1.0 - b1_power));
  }
};

class Adam final : public AdamBase {
 public:
  using AdamBase::AdamBase;
  OptimizerType type() const override { return OptimizerType::kAdam; }
  PushConstants BeginPush(VariableOptState*, int64_t step) const override {
    const double t = static_cast<double>(std::max<int64_t>(step, 1));
    return {Alpha(std::pow(options_.beta1, t), std::pow(options_.beta2, t)), step};
  }
};

class AdamAsync final : public AdamBase {
 public:
  using AdamBase::AdamBase;
  OptimizerType type() const override { return OptimizerType::kAdamAsync; }
  PushConstants BeginPush(VariableOptState* s, int64_t step) const override {
    if (!s->started) {
      s->started = true;
      s->beta1_power = options_.beta1;
      s->beta2_power = options_.beta2;
    }
    PushConstants c{Alpha(s->beta1_power, s->beta2_power), step};
    s->beta1_power *= options_.beta1;
    s->beta2_power *= options_.beta2;
    return c;
  }
};

// Slots: acc[width].
class Adagrad final : public Optimizer {
 public:
  using Optimizer::Optimizer;
  OptimizerType type() const override { return OptimizerType::kAdagrad; }
  int SlotFloats(int width) const override { return width; }
  void InitSlots(float* slots, int width) const override {
    std::fill(slots, slots + width, options_.initial_accumulator);
  }
  PushConstants BeginPush(VariableOptState*, int64_t step) const override {
    return {options_.learning_rate, step};
  }
  void Apply(float* w, float* acc, const float* g, int width,
             const PushConstants& c) const override {
    for (int i = 0; i < width; ++i) {
      acc[i] += g[i] * g[i];
      w[i] -= c.lr * g[i] / std::sqrt(acc[i]);
    }
  }
};

// Slots: acc[width], then the row's decay power (an integer held in a float,
// exact up to 2^24 periods).
class AdagradDecay final : public Optimizer {
 public:
  using Optimizer::Optimizer;
  OptimizerType type() const override { return OptimizerType::kAdagradDecay; }
  int SlotFloats(int width) const override { return width + 1; }
  void InitSlots(float* slots, int width) const override {
    std::fill(slots, slots + width, options_.initial_accumulator);
    slots[width] = 0.0f;
  }
  PushConstants BeginPush(VariableOptState*, int64_t step) const override {
    return {options_.learning_rate, step};
  }
  void Apply(float* w, float* slots, const float* g, int width,
             const PushConstants& c) const override {
    float* acc = slots;
    float& power = slots[width];
    const int64_t period = c.global_step / options_.decay_period;
    const bool decay = static_cast<double>(period) > power;
    if (decay) power += 1.0f;  // at most once per update, as DeepRec does
    const float floor = options_.initial_accumulator;
    for (int i = 0; i < width; ++i) {
      if (decay) acc[i] = std::max(options_.decay_rate * acc[i], floor);
      acc[i] += g[i] * g[i];
      w[i] -= c.lr * g[i] / std::sqrt(acc[i]);
    }
  }
};

}  // namespace

Status ParseOptimizerType(const std::string& name, OptimizerType* type) {
  if (name == "sgd") *type = OptimizerType::kSgd;
  else if (name == "adam") *type = OptimizerType::kAdam;
  else if (name == "adamasync") *type = OptimizerType::kAdamAsync;
  else if (name == "adagrad") *type = OptimizerType::kAdagrad;
  else if (name == "adagraddecay") *type = OptimizerType::kAdagradDecay;
  else
    return InvalidArgument("unknown optimizer '" + name +
                           "'; valid: sgd, adam, adamasync, adagrad, adagraddecay");
  return Status::Ok();
}

std::string OptimizerName(OptimizerType type) {
  switch (type) {
    case OptimizerType::kSgd: return "sgd";
    case OptimizerType::kAdam: return "adam";
    case OptimizerType::kAdamAsync: return "adamasync";
    case OptimizerType::kAdagrad: return "adagrad";
    case OptimizerType::kAdagradDecay: return "adagraddecay";
  }
  return "?";
}

Status MakeOptimizer(const OptimizerOptions& o, std::unique_ptr<Optimizer>* out) {
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate)) {
    return InvalidArgument("learning rate must be a positive finite number, got " +
                           std::to_string(o.learning_rate));
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) {
    return InvalidArgument("adam betas must lie in [0, 1)");
  }
  if (!(o.epsilon >= 0)) return InvalidArgument("epsilon must be >= 0");
  if (!(o.initial_accumulator > 0)) return InvalidArgument("initial accumulator must be > 0");
  if (o.decay_period <= 0) return InvalidArgument("adagraddecay period must be > 0");
  if (!(o.decay_rate > 0 && o.decay_rate <= 1)) {
    return InvalidArgument("adagraddecay rate must lie in (0, 1]");
  }
  switch (o.type) {
    case OptimizerType::kSgd: out->reset(new Sgd(o)); break;
    case OptimizerType::kAdam: out->reset(new Adam(o)); break;
    case OptimizerType::kAdamAsync: out->reset(new AdamAsync(o)); break;
    case OptimizerType::kAdagrad: out->reset(new Adagrad(o)); break;
    case OptimizerType::kAdagradDecay: out->reset(new AdagradDecay(o)); break;
  }
  return Status::Ok();
}

}  // namespace deepfm::ps

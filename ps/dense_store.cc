#include "ps/dense_store.h"

#include <cstring>

namespace deepfm::ps {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::string DenseUpdate::ToString() const {
  return moving_average ? "a moving average (momentum " + std::to_string(momentum) + ")"
                        : "optimizer-trained";
}

Status DenseStore::CheckUpdate(const std::string& name, const DenseUpdate& update) {
  if (update.moving_average && !(update.momentum >= 0 && update.momentum < 1)) {
    return InvalidArgument("dense variable '" + name + "': moving-average momentum " +
                           std::to_string(update.momentum) + " is outside [0, 1)");
  }
  return Status::Ok();
}

Status DenseStore::CheckShape(const std::string& name, const std::vector<int64_t>& shape,
                              int64_t* elements) {
  if (name.empty()) return InvalidArgument("dense variable name is empty");
  if (shape.size() > kMaxRank) {
    return InvalidArgument("dense variable '" + name + "' has rank " + std::to_string(shape.size()) +
                           ", more than " + std::to_string(kMaxRank));
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return InvalidArgument("dense variable '" + name + "' has bad shape " + ShapeString(shape));
    // Checked before multiplying, so the product never overflows.
    if (d > kMaxElements / n) {
      return InvalidArgument("dense variable '" + name + "' shape " + ShapeString(shape) + " has more than " +
                             std::to_string(kMaxElements) + " elements");
    }
    n *= d;
  }
  *elements = n;
  return Status::Ok();
}

Status DenseStore::Register(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<float>& init, uint32_t* id, bool* created) {
  int64_t n = 0;
  Status s = CheckShape(name, shape, &n);
  if (!s.ok()) return s;
  return Register(name, shape, 0, n, init, id, created);
}

Status DenseStore::Register(const std::string& name, const std::vector<int64_t>& shape, int64_t offset,
                            int64_t size, const std::vector<float>& init, uint32_t* id, bool* created,
                            const DenseUpdate& update) {
  int64_t whole = 0;
  Status s = CheckShape(name, shape, &whole);
  if (!s.ok()) return s;
  s = CheckUpdate(name, update);
  if (!s.ok()) return s;
  if (offset < 0 || size <= 0 || offset > whole - size) {
    return InvalidArgument("dense variable '" + name + "' shape " + ShapeString(shape) +
                           " has no slice [" + std::to_string(offset) + ", " +
                           std::to_string(offset + size) + ")");
  }
  if (!init.empty() && static_cast<int64_t>(init.size()) != size) {
    return InvalidArgument("dense variable '" + name + "' slice of " + std::to_string(size) +
                           " elements needs as many initial values, got " + std::to_string(init.size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(name);
  if (it != by_name_.end()) {
    const DenseVariable& v = *vars_[it->second];
    if (v.shape != shape) {
      return FailedPrecondition("dense variable '" + name + "' already registered with shape " +
                                ShapeString(v.shape) + ", refusing shape " + ShapeString(shape));
    }
    if (v.offset != offset || static_cast<int64_t>(v.values.size()) != size) {
      return FailedPrecondition("dense variable '" + name + "' already registered here as slice [" +
                                std::to_string(v.offset) + ", " +
                                std::to_string(v.offset + static_cast<int64_t>(v.values.size())) +
                                "), refusing slice [" + std::to_string(offset) + ", " +
                                std::to_string(offset + size) + ")");
    }
    if (!(v.update == update)) {
      return FailedPrecondition("dense variable '" + name + "' already registered as " +
                                v.update.ToString() + ", refusing it as " + update.ToString());
    }
    *id = it->second;
    *created = false;
    return Status::Ok();
  }
  auto v = std::make_unique<DenseVariable>();
  v->name = name;
  v->shape = shape;
  v->update = update;
  v->offset = offset;
  v->values = init.empty() ? std::vector<float>(size, 0.0f) : init;
  v->slots.resize(optimizer_->SlotFloats(static_cast<int>(size)));
  optimizer_->InitSlots(v->slots.data(), static_cast<int>(size));
  *id = static_cast<uint32_t>(vars_.size());
  *created = true;
  by_name_[name] = *id;
  vars_.push_back(std::move(v));
  return Status::Ok();
}

size_t DenseStore::num_variables() const {
  std::lock_guard<std::mutex> lock(mu_);
  return vars_.size();
}

const DenseVariable* DenseStore::Get(uint32_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return id < vars_.size() ? vars_[id].get() : nullptr;
}

int64_t DenseStore::NumElements(uint32_t id) const {
  const DenseVariable* v = Get(id);
  return v ? static_cast<int64_t>(v->values.size()) : -1;
}

Status DenseStore::Pull(uint32_t id, float* out) const {
  const DenseVariable* v = Get(id);
  if (!v) return InvalidArgument("unknown dense variable id " + std::to_string(id));
  std::lock_guard<std::mutex> lock(v->mu);
  std::memcpy(out, v->values.data(), v->values.size() * sizeof(float));
  return Status::Ok();
}

Status DenseStore::Push(uint32_t id, const float* grads, int64_t global_step) {
  DenseVariable* v = const_cast<DenseVariable*>(Get(id));
  if (!v) return InvalidArgument("unknown dense variable id " + std::to_string(id));
  std::lock_guard<std::mutex> lock(v->mu);
  if (v->update.moving_average) {
    // tf.train.ExponentialMovingAverage's form, as batch normalisation's
    // moving statistics update; the slots stay as registered.
    const float decay = 1.0f - v->update.momentum;
    float* values = v->values.data();
    for (size_t i = 0; i < v->values.size(); ++i) values[i] -= (values[i] - grads[i]) * decay;
    return Status::Ok();
  }
  const PushConstants c = optimizer_->BeginPush(&v->opt_state, global_step);
  optimizer_->Apply(v->values.data(), v->slots.data(), grads, static_cast<int>(v->values.size()), c);
  return Status::Ok();
}

Status DenseStore::Assign(uint32_t id, const std::vector<float>& values,
                          const std::vector<float>& slots, const VariableOptState& state) {
  DenseVariable* v = const_cast<DenseVariable*>(Get(id));
  if (!v) return InvalidArgument("unknown dense variable id " + std::to_string(id));
  std::lock_guard<std::mutex> lock(v->mu);
  if (values.size() != v->values.size() || slots.size() != v->slots.size()) {
    return InvalidArgument("dense variable '" + v->name + "': restore has " +
                           std::to_string(values.size()) + " values and " +
                           std::to_string(slots.size()) + " slots, expected " +
                           std::to_string(v->values.size()) + " and " +
                           std::to_string(v->slots.size()));
  }
  v->values = values;
  v->slots = slots;
  v->opt_state = state;
  return Status::Ok();
}

uint64_t DenseStore::TotalElements() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& v : vars_) n += v->values.size();
  return n;
}

}  // namespace deepfm::ps

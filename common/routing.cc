#include "common/routing.h"

#include <stdexcept>

namespace deepfm {

Router::Router(uint32_t num_shards, uint32_t num_slots)
    : num_shards_(num_shards),
      num_slots_(num_slots),
      slot_mask_((num_slots & (num_slots - 1)) == 0 ? num_slots - 1 : 0),
      owner_(num_slots) {
  if (num_shards == 0 || num_slots < num_shards) {
    throw std::invalid_argument("Router: need 1 <= num_shards <= num_slots, got " +
                                std::to_string(num_shards) + " shards, " +
                                std::to_string(num_slots) + " slots");
  }
  for (uint32_t s = 0; s < num_slots; ++s) {
    owner_[s] = static_cast<uint32_t>(uint64_t{s} * num_shards / num_slots);
  }
}

uint32_t Router::ShardOfName(const std::string& name) const {
  return ShardOfKey(Fnv1a64(name));
}

void Router::SetOwners(std::vector<uint32_t> owners) {
  if (owners.size() != num_slots_) {
    throw std::invalid_argument("Router::SetOwners: expected " + std::to_string(num_slots_) +
                                " owners, got " + std::to_string(owners.size()));
  }
  for (uint32_t o : owners) {
    if (o >= num_shards_) {
      throw std::invalid_argument("Router::SetOwners: owner " + std::to_string(o) +
                                  " >= num_shards " + std::to_string(num_shards_));
    }
  }
  owner_ = std::move(owners);
}

}  // namespace deepfm

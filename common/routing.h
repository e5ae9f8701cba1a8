// Key -> virtual slot -> shard routing (DESIGN.md §5).
//
// A key's slot depends only on the key and the slot count, never on the number
// of shards, so checkpoints grouped by slot can be restored onto any number of
// shards: only the slot -> shard owner table changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/hash.h"

namespace deepfm {

inline constexpr uint32_t kDefaultNumSlots = 4096;

// A second mix, salted, decorrelates the slot from the table's own bucket choice.
inline constexpr uint64_t kSlotSalt = 0x5851f42d4c957f2dULL;

inline uint32_t SlotOf(uint64_t key, uint32_t num_slots) {
  return static_cast<uint32_t>(Mix64(key ^ kSlotSalt) % num_slots);
}

class Router {
 public:
  // Slots are assigned to shards in contiguous, near-equal ranges, so moving
  // from N to N+1 shards moves whole ranges (and a future owner table can be
  // installed with SetOwners for live resharding).
  Router(uint32_t num_shards, uint32_t num_slots = kDefaultNumSlots);

  uint32_t num_shards() const { return num_shards_; }
  uint32_t num_slots() const { return num_slots_; }
  uint32_t SlotOfKey(uint64_t key) const {
    // Same value as SlotOf; a mask instead of a 64-bit division when the slot
    // count is a power of two (the default), since shards check every key.
    return slot_mask_ ? static_cast<uint32_t>(Mix64(key ^ kSlotSalt) & slot_mask_)
                      : SlotOf(key, num_slots_);
  }
  uint32_t ShardOfSlot(uint32_t slot) const { return owner_[slot]; }
  uint32_t ShardOfKey(uint64_t key) const { return owner_[SlotOfKey(key)]; }
  // The shard a dense variable (or its first slice, common/dense_partition.h)
  // lies on, chosen by name.
  uint32_t ShardOfName(const std::string& name) const;

  const std::vector<uint32_t>& owners() const { return owner_; }
  // Replaces the owner table; every entry must be < num_shards.
  void SetOwners(std::vector<uint32_t> owners);

 private:
  uint32_t num_shards_;
  uint32_t num_slots_;
  uint64_t slot_mask_;  // num_slots - 1 when a power of two, else 0
  std::vector<uint32_t> owner_;
};

}  // namespace deepfm

// The one open snapshot of a shard, from its cut until its save is written:
// kept until the save ends it, a newer cut replaces it, or it outlives its
// time to live (the chief died between its cut and its save). Ending it lets
// the tables stop keeping rows' old bytes for it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "proto/ps.pb.h"
#include "ps/dense_store.h"
#include "ps/embedding_table.h"

namespace deepfm::ps {

// A shard as it was at one cut (step S), kept while its checkpoint file is
// written. Dense variables are copied at the cut (they are small next to the
// tables); table rows are copied on write by the tables themselves.
struct ShardSnapshot {
  struct Dense {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;  // of the slice this shard holds
    std::vector<float> values;
    std::vector<float> slots;
    VariableOptState state;
    DenseUpdate update;
  };
  struct Table {
    EmbeddingTable* table;
    uint64_t generation;  // EmbeddingTable::BeginSnapshot's
    VariableOptState state;
  };
  int64_t step = 0;
  std::vector<Table> tables;
  std::vector<Dense> dense;
  std::vector<TrainerPosition> positions;  // shard 0: each trainer's, at the cut
  double copy_ms = 0;                      // copying the dense variables and positions at the cut
};

class SnapshotHolder {
 public:
  // `shard_index` names the shard in the message an expiry prints.
  SnapshotHolder(uint32_t shard_index, int64_t ttl_ms)
      : shard_index_(shard_index), ttl_ms_(ttl_ms) {}

  // Makes `snap` the open snapshot, replacing any before it; its time to
  // live starts now.
  void Hold(std::shared_ptr<const ShardSnapshot> snap);
  // The open snapshot when it is the one cut at `step`, else null.
  std::shared_ptr<const ShardSnapshot> At(int64_t step) const;
  // Ends `snap` (its tables' snapshots) when it is still the open one; a
  // newer snapshot is left alone.
  void End(const std::shared_ptr<const ShardSnapshot>& snap);
  // Ends the open snapshot when it is past its time to live, saying so on
  // stderr. Cheap when none is due: every push calls it.
  void ExpireIfDue();

 private:
  void EndLocked() DEEPFM_REQUIRES(mu_);

  const uint32_t shard_index_;
  const int64_t ttl_ms_;
  mutable std::mutex mu_;
  std::shared_ptr<const ShardSnapshot> snap_ DEEPFM_GUARDED_BY(mu_);
  // NowNanos() after which the open snapshot expires; 0: none open. Read
  // without the lock.
  std::atomic<int64_t> expires_ns_{0};
};

}  // namespace deepfm::ps

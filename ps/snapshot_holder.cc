#include "ps/snapshot_holder.h"

#include <cstdio>

#include "common/timing.h"

namespace deepfm::ps {

void SnapshotHolder::Hold(std::shared_ptr<const ShardSnapshot> snap) {
  std::lock_guard<std::mutex> lock(mu_);
  snap_ = std::move(snap);
  expires_ns_ = NowNanos() + ttl_ms_ * 1000000;
}

std::shared_ptr<const ShardSnapshot> SnapshotHolder::At(int64_t step) const {
  std::lock_guard<std::mutex> lock(mu_);
  return snap_ && snap_->step == step ? snap_ : nullptr;
}

void SnapshotHolder::End(const std::shared_ptr<const ShardSnapshot>& snap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (snap_ == snap && snap_) EndLocked();
}

void SnapshotHolder::ExpireIfDue() {
  const int64_t due = expires_ns_.load(std::memory_order_relaxed);
  if (due == 0 || NowNanos() <= due) return;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t expires = expires_ns_.load();
  if (!snap_ || expires == 0 || NowNanos() <= expires) return;
  fprintf(stderr,
          "shard %u: dropping the snapshot cut at step %lld: no save wrote it within %lld ms (did "
          "the chief die between its cut and its save?)\n",
          shard_index_, static_cast<long long>(snap_->step), static_cast<long long>(ttl_ms_));
  EndLocked();
}

void SnapshotHolder::EndLocked() {
  for (const ShardSnapshot::Table& t : snap_->tables) t.table->EndSnapshot();
  snap_.reset();
  expires_ns_ = 0;
}

}  // namespace deepfm::ps

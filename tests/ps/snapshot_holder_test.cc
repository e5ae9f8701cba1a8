// The open snapshot's life: found by its step only, ended by its own save
// only (never a newer one's), and dropped once past its time to live, which
// ends the tables' snapshots too.
#include "ps/snapshot_holder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/support/ps_fixtures.h"

namespace deepfm::ps {
namespace {

class SnapshotHolderTest : public ::testing::Test {
 protected:
  SnapshotHolderTest() : opt_(testing_util::SgdOptimizer(0.1f)) {
    TableOptions o;
    o.name = "emb";
    o.dim = 2;
    table_ = std::make_unique<EmbeddingTable>(o, opt_.get());
    const uint64_t key = 5;
    float out[2];
    table_->Pull(&key, 1, out);
  }
  // A snapshot at `step` whose table snapshot is open.
  std::shared_ptr<const ShardSnapshot> Cut(int64_t step) {
    auto s = std::make_shared<ShardSnapshot>();
    s->step = step;
    s->tables.push_back({table_.get(), table_->BeginSnapshot(step), {}});
    return s;
  }
  // Whether the table's snapshot of `snap` can still be copied.
  bool TableOpen(const std::shared_ptr<const ShardSnapshot>& snap) {
    RecordBuffer out;
    return table_->CopySnapshotStripe(snap->tables[0].generation, 0, &out) >= 0;
  }

  std::unique_ptr<Optimizer> opt_;
  std::unique_ptr<EmbeddingTable> table_;
};

TEST_F(SnapshotHolderTest, FoundByItsStepAndEndedByItsOwnSaveOnly) {
  SnapshotHolder h(0, 3600 * 1000);
  EXPECT_EQ(h.At(4), nullptr);
  const auto first = Cut(4);
  h.Hold(first);
  EXPECT_EQ(h.At(4), first);
  EXPECT_EQ(h.At(5), nullptr);
  const auto second = Cut(8);  // a newer cut supersedes the first
  h.Hold(second);
  EXPECT_EQ(h.At(4), nullptr);
  h.End(first);  // the first's save, late: the second stays open
  EXPECT_EQ(h.At(8), second);
  EXPECT_TRUE(TableOpen(second));
  h.End(second);
  EXPECT_EQ(h.At(8), nullptr);
  EXPECT_FALSE(TableOpen(second));
}

TEST_F(SnapshotHolderTest, ASnapshotPastItsTimeToLiveIsDroppedAndItsTablesEnded) {
  SnapshotHolder h(3, 50);
  const auto snap = Cut(4);
  h.Hold(snap);
  h.ExpireIfDue();
  EXPECT_EQ(h.At(4), snap) << "dropped before its time";
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  h.ExpireIfDue();
  EXPECT_EQ(h.At(4), nullptr);
  EXPECT_FALSE(TableOpen(snap));
}

}  // namespace
}  // namespace deepfm::ps

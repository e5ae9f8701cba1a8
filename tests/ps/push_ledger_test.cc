#include "ps/push_ledger.h"

#include <gtest/gtest.h>

namespace deepfm::ps {
namespace {

using V = PushLedger::Verdict;

TEST(PushLedgerTest, ARetryOfAnAppliedPushIsADuplicateWithTheFirstStep) {
  PushLedger l;
  int64_t step = -1;
  EXPECT_EQ(l.Begin(3, 77, 1, &step), V::kApply);
  EXPECT_EQ(l.Begin(3, 77, 1, &step), V::kInProgress) << "a retry racing the first attempt";
  l.Done(3, 77, 1, 12);
  EXPECT_EQ(l.Begin(3, 77, 1, &step), V::kDuplicate);
  EXPECT_EQ(step, 12);
  EXPECT_EQ(l.Begin(3, 77, 2, &step), V::kApply);
  l.Done(3, 77, 2, 13);
  EXPECT_EQ(l.Begin(3, 77, 1, &step), V::kDuplicate) << "a very late retry of seq 1";
}

TEST(PushLedgerTest, TrainersAndSessionsAreSeparate) {
  PushLedger l;
  int64_t step;
  EXPECT_EQ(l.Begin(0, 77, 1, &step), V::kApply);
  l.Done(0, 77, 1, 1);
  EXPECT_EQ(l.Begin(1, 77, 1, &step), V::kApply) << "another trainer's seq 1";
  l.Done(1, 77, 1, 2);
  // A restarted trainer process: a new session starts its seq at 1 again.
  EXPECT_EQ(l.Begin(0, 78, 1, &step), V::kApply);
}

TEST(PushLedgerTest, ARefusedPushCanBeRetried) {
  PushLedger l;
  int64_t step;
  EXPECT_EQ(l.Begin(0, 5, 1, &step), V::kApply);
  l.Done(0, 5, 1, 1);
  EXPECT_EQ(l.Begin(0, 5, 2, &step), V::kApply);
  l.Forget(0, 5, 2);
  EXPECT_EQ(l.Begin(0, 5, 2, &step), V::kApply);
  EXPECT_EQ(l.Begin(0, 5, 1, &step), V::kDuplicate);
}

TEST(PushLedgerTest, NoSessionMeansNoLedger) {
  PushLedger l;
  int64_t step;
  EXPECT_EQ(l.Begin(0, 0, 1, &step), V::kApply);
  EXPECT_EQ(l.Begin(0, 0, 1, &step), V::kApply);
}

}  // namespace
}  // namespace deepfm::ps

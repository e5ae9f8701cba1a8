#include "ps/push_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace deepfm::ps {
namespace {

using std::chrono::milliseconds;

// Records every cut and what was applied when it ran.
struct Recorder {
  std::vector<int64_t> cuts;
  std::atomic<int64_t> applied{0};
  std::vector<int64_t> applied_at_cut;
  PushGate::CutFn Fn() {
    return [this](int64_t step) {
      cuts.push_back(step);
      applied_at_cut.push_back(applied.load());
    };
  }
};

void Apply(PushGate& g, Recorder& r, int64_t carried, int64_t increment, int64_t hint) {
  int64_t step = 0;
  ASSERT_TRUE(g.Enter(carried, increment, hint, &step).ok());
  r.applied.fetch_add(1);
  g.Leave(step);
}

TEST(PushGateTest, ShardZeroNumbersStepsAndCutsAtTheLastOne) {
  Recorder r;
  PushGate g(/*numbers_steps=*/true, r.Fn(), milliseconds(1000));
  int64_t step = 0;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(g.Enter(0, 1, 0, &step).ok());
    EXPECT_EQ(step, i);
    g.Leave(step);
  }
  EXPECT_EQ(g.CutNow(), 3);
  EXPECT_EQ(g.last_cut(), 3);
  EXPECT_TRUE(g.AwaitCut(3, milliseconds(10)).ok());
  EXPECT_EQ(g.AwaitCut(4, milliseconds(10)).code(), Code::kFailedPrecondition)
      << "shard 0 has no cut at 4 until CutNow takes one";
}

// A push shard 0 does not number (tools, tests) counts as the largest step
// seen, but never as a step already cut: its rows would pass for unchanged.
TEST(PushGateTest, AnUnnumberedPushAfterACutLandsBeyondIt) {
  Recorder r;
  PushGate g(true, r.Fn(), milliseconds(1000));
  Apply(g, r, 0, 1, 0);
  Apply(g, r, 0, 1, 0);
  ASSERT_EQ(g.CutNow(), 2);
  int64_t step = 0;
  ASSERT_TRUE(g.Enter(/*carried=*/1, /*increment=*/0, 0, &step).ok());
  g.Leave(step);
  EXPECT_EQ(step, 3);
  ASSERT_TRUE(g.Enter(10, 0, 0, &step).ok());
  g.Leave(step);
  EXPECT_EQ(step, 10);
}

TEST(PushGateTest, ShardZeroCutWaitsForThePushInFlight) {
  Recorder r;
  PushGate g(true, r.Fn(), milliseconds(1000));
  int64_t step = 0;
  ASSERT_TRUE(g.Enter(0, 1, 0, &step).ok());
  auto cut = std::async(std::launch::async, [&] { return g.CutNow(); });
  EXPECT_EQ(cut.wait_for(milliseconds(100)), std::future_status::timeout)
      << "cut while step 1 was still being applied";
  std::this_thread::sleep_for(milliseconds(20));
  g.Leave(step);
  EXPECT_EQ(cut.get(), 1);
  EXPECT_GE(g.last_cut_hold_ms(), 100) << "the hold counts the wait for the push in flight";
}

// Another shard receives steps out of order. A push carrying cut hint 3
// makes the cut pending: step 5 waits, and the cut runs as soon as steps
// 1..3 are all in, with exactly those applied.
TEST(PushGateTest, OtherShardCutsWhenEveryStepUpToItIsIn) {
  Recorder r;
  PushGate g(false, r.Fn(), milliseconds(5000));
  Apply(g, r, 2, 0, 0);
  Apply(g, r, 1, 0, 0);
  auto held = std::async(std::launch::async, [&] { Apply(g, r, 5, 0, /*hint=*/3); });
  EXPECT_EQ(held.wait_for(milliseconds(100)), std::future_status::timeout)
      << "step 5 was applied before the cut at 3 was complete";
  EXPECT_TRUE(r.cuts.empty());
  Apply(g, r, 3, 0, 0);  // completes 1..3: the cut runs, then step 5 goes on
  held.get();
  ASSERT_EQ(r.cuts.size(), 1u);
  EXPECT_EQ(r.cuts[0], 3);
  EXPECT_EQ(r.applied_at_cut[0], 3) << "the cut saw a push beyond its step";
  EXPECT_TRUE(g.AwaitCut(3, milliseconds(10)).ok());
  EXPECT_EQ(g.step(), 5);
}

TEST(PushGateTest, AwaitCutMakesTheCutPendingAndTakesItWhenComplete) {
  Recorder r;
  PushGate g(false, r.Fn(), milliseconds(5000));
  Apply(g, r, 1, 0, 0);
  auto await = std::async(std::launch::async, [&] { return g.AwaitCut(2, milliseconds(5000)); });
  EXPECT_EQ(await.wait_for(milliseconds(50)), std::future_status::timeout);
  Apply(g, r, 2, 0, 0);
  EXPECT_TRUE(await.get().ok());
  ASSERT_EQ(r.cuts.size(), 1u);
  EXPECT_EQ(r.applied_at_cut[0], 2);
}

// A step that never arrives (its worker died between shard 0 and here)
// must not hold pushes forever: the cut is abandoned, naming the step.
TEST(PushGateTest, AMissingStepAbandonsTheCutInsteadOfHangingPushes) {
  Recorder r;
  PushGate g(false, r.Fn(), milliseconds(200));
  Apply(g, r, 1, 0, 0);
  const auto start = std::chrono::steady_clock::now();
  Apply(g, r, 4, 0, /*hint=*/3);  // step 2 and 3 never come
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));
  EXPECT_TRUE(r.cuts.empty());
  Status s = g.AwaitCut(3, milliseconds(10));
  EXPECT_EQ(s.code(), Code::kAborted) << s.ToString();
  EXPECT_NE(s.message().find("step 2 never arrived"), std::string::npos) << s.message();
}

TEST(PushGateTest, ResetCountsEveryStepUpToTheRestoredOne) {
  Recorder r;
  PushGate g(false, r.Fn(), milliseconds(1000));
  g.Reset(40);
  EXPECT_EQ(g.step(), 40);
  Apply(g, r, 41, 0, 0);
  EXPECT_TRUE(g.AwaitCut(41, milliseconds(100)).ok()) << "steps up to 40 came with the restore";
}

}  // namespace
}  // namespace deepfm::ps

#include "worker/pipeline.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace deepfm {
namespace {

using std::chrono::milliseconds;

// A stage waiting for pushes must wake when another stage fails: the error
// is recorded and the waiters woken under one lock, so the wake-up can
// never come before the error it announces (the lost wake-up that once
// hung a job until its 300 s hang timeout).
TEST(StepSyncTest, AFailureWakesAStageWaitingForPushes) {
  for (int round = 0; round < 50; ++round) {
    StepSync sync(0);
    auto waiter = std::async(std::launch::async, [&] { return sync.WaitForPushes(5); });
    if (round % 2) std::this_thread::sleep_for(milliseconds(1));
    sync.Fail(Internal("push to parameter server 1 failed"));
    ASSERT_EQ(waiter.wait_for(milliseconds(2000)), std::future_status::ready)
        << "round " << round << ": the waiting stage slept through the failure";
    EXPECT_FALSE(waiter.get());
    EXPECT_EQ(sync.error().message(), "push to parameter server 1 failed");
  }
}

TEST(StepSyncTest, PushesAndStopWakeWaiters) {
  StepSync sync(10);
  auto waiter = std::async(std::launch::async, [&] { return sync.WaitForPushes(2); });
  sync.PushDone(11);
  EXPECT_EQ(waiter.wait_for(milliseconds(50)), std::future_status::timeout);
  sync.PushDone(12);
  EXPECT_TRUE(waiter.get());
  EXPECT_EQ(sync.global_step(), 12);
  EXPECT_EQ(sync.pushes_done(), 2);
  auto stopped = std::async(std::launch::async, [&] { return sync.WaitForPushes(100); });
  sync.Stop();
  ASSERT_EQ(stopped.wait_for(milliseconds(2000)), std::future_status::ready);
  EXPECT_FALSE(stopped.get());
  EXPECT_TRUE(sync.stopped());
  EXPECT_TRUE(sync.error().ok()) << "a stop is not an error";
}

TEST(StepSyncTest, TheFirstErrorWins) {
  StepSync sync(0);
  sync.Fail(Internal("first"));
  sync.Fail(Internal("second"));
  EXPECT_EQ(sync.error().message(), "first");
}

TEST(ChannelTest, CloseWakesBothSidesAndKeepsWhatItHolds) {
  Channel<int> c(1);
  ASSERT_TRUE(c.Put(1));
  auto blocked_put = std::async(std::launch::async, [&] { return c.Put(2); });
  EXPECT_EQ(blocked_put.wait_for(milliseconds(50)), std::future_status::timeout);
  c.Close();
  EXPECT_FALSE(blocked_put.get());
  int v = 0;
  EXPECT_TRUE(c.Get(&v));
  EXPECT_EQ(v, 1);
  EXPECT_FALSE(c.Get(&v));
}

}  // namespace
}  // namespace deepfm

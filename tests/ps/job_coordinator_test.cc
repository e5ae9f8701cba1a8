// The chief shard's record of the trainers: heartbeats, progress and done,
// with time given explicitly so ages are exact.
#include "ps/job_coordinator.h"

#include <gtest/gtest.h>

namespace deepfm::ps {
namespace {

using Clock = JobCoordinator::Clock;
using std::chrono::seconds;

HeartbeatRequest Beat(uint32_t index, WorkerPhase phase, int64_t progress) {
  HeartbeatRequest r;
  r.set_task_index(index);
  r.set_phase(phase);
  r.set_progress(progress);
  r.set_local_step(progress);
  return r;
}

TEST(JobCoordinatorTest, AgesOfHeartbeatsAndProgress) {
  const Clock::time_point t0 = Clock::now();
  JobCoordinator c(2, t0);
  JobStatusResponse s;
  c.Describe(&s, t0 + seconds(7));
  ASSERT_EQ(s.workers_size(), 2);
  EXPECT_EQ(s.num_workers(), 2u);
  EXPECT_EQ(s.workers(1).phase(), PHASE_UNKNOWN);
  EXPECT_DOUBLE_EQ(s.workers(1).seconds_since_heartbeat(), 7)
      << "never heard from: age since the shard started";

  ASSERT_TRUE(c.Heartbeat(Beat(0, TRAINING, 5), t0 + seconds(10)).ok());
  ASSERT_TRUE(c.Heartbeat(Beat(0, TRAINING, 5), t0 + seconds(14)).ok());  // no progress
  s.Clear();
  c.Describe(&s, t0 + seconds(15));
  EXPECT_EQ(s.workers(0).phase(), TRAINING);
  EXPECT_EQ(s.workers(0).local_step(), 5);
  EXPECT_DOUBLE_EQ(s.workers(0).seconds_since_heartbeat(), 1);
  EXPECT_DOUBLE_EQ(s.workers(0).seconds_since_progress(), 5);
  ASSERT_TRUE(c.Heartbeat(Beat(0, TRAINING, 6), t0 + seconds(16)).ok());
  ASSERT_TRUE(
      c.Heartbeat(Beat(0, WAITING, 6), t0 + seconds(20)).ok());  // a new phase is progress too
  s.Clear();
  c.Describe(&s, t0 + seconds(21));
  EXPECT_DOUBLE_EQ(s.workers(0).seconds_since_progress(), 1);
}

TEST(JobCoordinatorTest, DoneCountsDistinctTrainers) {
  JobCoordinator c(3);
  uint32_t done = 0;
  ASSERT_TRUE(c.WorkerDone(1, &done).ok());
  EXPECT_EQ(done, 1u);
  ASSERT_TRUE(c.WorkerDone(1, &done).ok());  // a retry does not count twice
  EXPECT_EQ(done, 1u);
  ASSERT_TRUE(c.WorkerDone(0, &done).ok());
  EXPECT_EQ(done, 2u);
  JobStatusResponse s;
  c.Describe(&s);
  EXPECT_TRUE(s.workers(0).done());
  EXPECT_FALSE(s.workers(2).done());
}

TEST(JobCoordinatorTest, BadReportsAreRefusedAndChangeNothing) {
  JobCoordinator c(2);
  uint32_t done = 0;
  Status st = c.WorkerDone(2, &done);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("task_index 2 is outside this job's 2 trainers"), std::string::npos)
      << st.message();
  EXPECT_EQ(c.Heartbeat(Beat(5, TRAINING, 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ(c.Heartbeat(Beat(0, PHASE_UNKNOWN, 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ(c.Heartbeat(Beat(0, static_cast<WorkerPhase>(99), 1)).code(), Code::kInvalidArgument);
  EXPECT_EQ(c.Heartbeat(Beat(0, TRAINING, -1)).code(), Code::kInvalidArgument);
  JobStatusResponse s;
  c.Describe(&s);
  ASSERT_EQ(s.workers_size(), 2);
  for (const auto& w : s.workers()) {
    EXPECT_EQ(w.phase(), PHASE_UNKNOWN);
    EXPECT_FALSE(w.done());
  }
  // Without a known trainer count (a bare shard in tests) any sane index is taken.
  JobCoordinator open(0);
  EXPECT_TRUE(open.WorkerDone(3, &done).ok());
  EXPECT_EQ(open.WorkerDone(1u << 20, &done).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace deepfm::ps

// Which trainer, if any, a JobStatus shows failed or stuck.
#include "rpc/job_status.h"

#include <gtest/gtest.h>

namespace deepfm::rpc {
namespace {

ps::WorkerStatus Worker(uint32_t index, ps::WorkerPhase phase, double since_heartbeat,
                        double since_progress, bool done = false) {
  ps::WorkerStatus w;
  w.set_task_index(index);
  w.set_phase(phase);
  w.set_seconds_since_heartbeat(since_heartbeat);
  w.set_seconds_since_progress(since_progress);
  w.set_done(done);
  w.set_local_step(42);
  return w;
}

TEST(FindStuckTrainerTest, EachWayOfBeingStuck) {
  ps::JobStatusResponse s;
  *s.add_workers() = Worker(0, ps::TRAINING, 0.5, 0.5);
  *s.add_workers() = Worker(1, ps::WAITING, 1, 500);  // the chief waiting: not stuck
  *s.add_workers() = Worker(2, ps::FINISHED, 900, 900, true);
  EXPECT_FALSE(FindStuckTrainer(s, 10).found());

  ps::JobStatusResponse silent = s;
  *silent.add_workers() = Worker(3, ps::TRAINING, 11, 11);
  StuckTrainer t = FindStuckTrainer(silent, 10);
  EXPECT_EQ(t.index, 3);
  EXPECT_NE(t.why.find("trainer 3 sent no heartbeat for 11 s"), std::string::npos) << t.why;
  EXPECT_NE(t.why.find("--hang_timeout 10 s"), std::string::npos) << t.why;

  ps::JobStatusResponse never = s;
  *never.add_workers() = Worker(3, ps::PHASE_UNKNOWN, 20, 20);
  EXPECT_NE(FindStuckTrainer(never, 10).why.find("never heard from"), std::string::npos);

  ps::JobStatusResponse stalled = s;
  *stalled.add_workers() = Worker(3, ps::EVALUATING, 1, 12);
  t = FindStuckTrainer(stalled, 10);
  EXPECT_EQ(t.index, 3);
  EXPECT_NE(t.why.find("made no progress for 12 s in phase EVALUATING"), std::string::npos)
      << t.why;

  ps::JobStatusResponse failed = s;
  *failed.add_workers() = Worker(3, ps::FAILED, 0, 0);
  t = FindStuckTrainer(failed, 1000);
  EXPECT_EQ(t.index, 3) << "a failed trainer is reported at once, whatever the timeout";
  EXPECT_NE(t.why.find("failed"), std::string::npos) << t.why;
}

}  // namespace
}  // namespace deepfm::rpc

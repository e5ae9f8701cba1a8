// A shard restarted alone, behind its peers, refuses to serve: the check
// through real Stats RPCs, and RunPsTask returning before it serves.
#include "ps/peer_check.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>

#include "common/bytes.h"
#include "ps/ps_task.h"
#include "tests/support/free_port.h"
#include "tests/support/loopback_shards.h"

namespace deepfm::ps {
namespace {

using testing_util::LoopbackShards;

// Shard 0 numbers `steps` pushes, as a training job's chief shard does.
void Advance(Shard& shard0, int steps) {
  for (int step = 1; step <= steps; ++step) {
    PushRequest p;
    p.set_global_step(step);
    p.set_increment_global_step(1);
    PushResponse r;
    ASSERT_TRUE(shard0.Push(p, &r).ok());
  }
  ASSERT_EQ(shard0.global_step(), steps);
}

TEST(PeerCheckTest, AShardBehindItsPeersRefusesNamingBothSteps) {
  LoopbackShards shards(2, OptimizerType::kSgd, 0.1f);
  Advance(shards.shard(0), 7);
  PeerCheckOptions o;
  o.hosts = shards.hosts();
  o.self = 1;
  o.restored_step = 6;  // one step behind is behind
  o.restored_from = "job/ckpt-6";
  Status s = CheckPeersNotAhead(o);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("shard 1 restored step 6 (job/ckpt-6)"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("shard 0 (" + shards.hosts()[0] + ") is at global step 7"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("restart the whole job"), std::string::npos) << s.message();
  o.restored_step = 0;
  o.restored_from.clear();
  EXPECT_NE(CheckPeersNotAhead(o).message().find("started with no checkpoint"), std::string::npos);
  // A whole job restarted from one checkpoint: every shard at its step.
  o.restored_step = 7;
  EXPECT_TRUE(CheckPeersNotAhead(o).ok());
  // Shard 0 does not ask itself.
  o.self = 0;
  o.restored_step = 0;
  EXPECT_TRUE(CheckPeersNotAhead(o).ok());
}

TEST(PeerCheckTest, PeersNotUpYetAreAFreshStart) {
  PeerCheckOptions o;
  o.hosts = {"127.0.0.1:" + std::to_string(testing_util::FreeLoopbackPort()), "127.0.0.1:1"};
  o.self = 1;
  o.timeout_ms = 500;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(CheckPeersNotAhead(o).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// The task itself: restarted alone (no checkpoint) behind a peer at step 3,
// it returns an error instead of serving.
TEST(PeerCheckTest, RunPsTaskRefusesToServeBehindItsPeers) {
  LoopbackShards peer(1, OptimizerType::kSgd, 0.1f);
  Advance(peer.shard(0), 3);
  PsTaskOptions o;
  o.name = "ps:1";
  o.shard.shard_index = 1;
  o.shard.num_shards = 2;
  o.shard.optimizer.type = OptimizerType::kSgd;
  o.restore = false;
  o.server.bind = "127.0.0.1";
  o.server.port = testing_util::FreeLoopbackPort();
  o.peers = {peer.hosts()[0], "127.0.0.1:" + std::to_string(o.server.port)};
  auto task = std::async(std::launch::async, [&] { return RunPsTask(o); });
  if (task.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "the shard served behind its peer";
    std::_Exit(1);  // RunPsTask waits for SIGTERM: nothing else would end it
  }
  EXPECT_NE(task.get(), 0);
}

}  // namespace
}  // namespace deepfm::ps

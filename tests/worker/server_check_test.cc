// A worker refuses servers that run another optimizer or learning rate, or
// that are not the shards its host list says, asked through real Stats RPCs.
#include "worker/server_check.h"

#include <gtest/gtest.h>

#include "tests/support/loopback_shards.h"
#include "worker/ps_client.h"

namespace deepfm {
namespace {

using testing_util::LoopbackShards;

Status Check(const std::vector<std::string>& hosts, const std::string& optimizer, double lr) {
  PsClientOptions co;
  co.hosts = hosts;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  if (!s.ok()) return s;
  std::vector<ps::StatsResponse> stats;
  s = client->Stats(&stats);
  if (!s.ok()) return s;
  return CheckServersMatch(stats, hosts, optimizer, lr);
}

TEST(ServerCheckTest, AcceptsTheJobItWasToldAbout) {
  LoopbackShards shards(2, ps::OptimizerType::kAdagrad, 0.05f);
  Status s = Check(shards.hosts(), "adagrad", 0.05);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(ServerCheckTest, RefusesAnotherOptimizer) {
  LoopbackShards shards(2, ps::OptimizerType::kAdagrad, 0.05f);
  Status s = Check(shards.hosts(), "adamasync", 0.05);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("runs optimizer adagrad"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--optimizer=adamasync"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(shards.hosts()[0]), std::string::npos) << s.message();
}

TEST(ServerCheckTest, RefusesAnotherLearningRate) {
  LoopbackShards shards(1, ps::OptimizerType::kSgd, 0.01f);
  Status s = Check(shards.hosts(), "sgd", 0.011);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("--learning_rate=0.011"), std::string::npos) << s.message();
  // The servers hold the rate as a float: the double the worker was given
  // matches it at float precision.
  EXPECT_TRUE(Check(shards.hosts(), "sgd", 0.01).ok());
}

TEST(ServerCheckTest, RefusesShardsListedOutOfOrderOrFromAnotherJob) {
  LoopbackShards shards(2, ps::OptimizerType::kSgd, 0.01f);
  Status s = Check({shards.hosts()[1], shards.hosts()[0]}, "sgd", 0.01);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("says it is shard 1 of 2 but --ps_hosts lists it as shard 0 of 2"),
            std::string::npos)
      << s.message();
  s = Check({shards.hosts()[0]}, "sgd", 0.01);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("shard 0 of 2 but --ps_hosts lists it as shard 0 of 1"),
            std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace deepfm

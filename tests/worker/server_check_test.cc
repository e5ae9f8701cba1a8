// A worker refuses servers that run another optimizer or learning rate, that
// are not the shards its host list says, that keep their checkpoints in
// another folder, or that hold another model, asked through real Stats RPCs.
#include "worker/server_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/loopback_shards.h"
#include "worker/ps_client.h"

namespace deepfm {
namespace {

using testing_util::LoopbackShards;

namespace fs = std::filesystem;

std::vector<ps::StatsResponse> StatsOf(const std::vector<std::string>& hosts) {
  PsClientOptions co;
  co.hosts = hosts;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::vector<ps::StatsResponse> stats;
  if (s.ok()) s = client->Stats(&stats);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return stats;
}

Status Check(const std::vector<std::string>& hosts, const std::string& optimizer, double lr,
             const std::string& folder = "") {
  const std::vector<ps::StatsResponse> stats = StatsOf(hosts);
  if (stats.size() != hosts.size()) return Internal("no stats");
  return CheckServersMatch(stats, hosts, ExpectedJob{optimizer, lr, folder});
}

std::string TempFolder(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("server_check_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
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

// The README's TF_CONFIG jobs with another folder per task: refused before
// the first step, naming both folders and the flag.
TEST(ServerCheckTest, RefusesShardsThatKeepCheckpointsInAnotherFolder) {
  const std::string a = TempFolder("a"), b = TempFolder("b");
  testing_util::LoopbackShards shards(2, ps::OptimizerType::kSgd, 0.01f, kDefaultDenseSliceBytes,
                                      a);
  // The same folder, spelled differently, is the same folder.
  EXPECT_TRUE(Check(shards.hosts(), "sgd", 0.01, a + "/").ok());
  EXPECT_TRUE(Check(shards.hosts(), "sgd", 0.01, a + "/./x/..").ok());
  // Not checked for a trainer that saves nothing.
  EXPECT_TRUE(Check(shards.hosts(), "sgd", 0.01, "").ok());
  Status s = Check(shards.hosts(), "sgd", 0.01, b);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("keeps its checkpoints in " + NormalizedFolder(a)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("job folder is " + NormalizedFolder(b)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("--checkpoint"), std::string::npos) << s.message();
  // One character off is another folder.
  EXPECT_FALSE(Check(shards.hosts(), "sgd", 0.01, a + "x").ok());
  EXPECT_FALSE(Check(shards.hosts(), "sgd", 0.01, a.substr(0, a.size() - 1)).ok());
  // Shards with no folder at all.
  testing_util::LoopbackShards bare(1, ps::OptimizerType::kSgd, 0.01f);
  s = Check(bare.hosts(), "sgd", 0.01, b);
  EXPECT_NE(s.message().find("keeps no checkpoints"), std::string::npos) << s.message();
}

ExpectedModel SmallModel() {
  ExpectedModel m;
  m.spec_name = "mine";
  m.tables = {{"user", 9}, {"item", 9}};
  m.dense = {{"dnn/w0", {16, 8}}, {"dnn/b0", {8}}};
  return m;
}

// Servers that hold part of the model (another trainer is registering it)
// are fine; a table or variable of another size or name is refused.
TEST(ServerCheckTest, RefusesServersThatHoldAnotherModel) {
  testing_util::LoopbackShards shards(2, ps::OptimizerType::kSgd, 0.01f);
  const ExpectedModel mine = SmallModel();
  EXPECT_TRUE(CheckServersHoldModel(StatsOf(shards.hosts()), shards.hosts(), mine).ok());
  // A trainer part way through registering: one table, one variable.
  PsClientOptions co;
  co.hosts = shards.hosts();
  std::unique_ptr<PsClient> client;
  ASSERT_TRUE(PsClient::Connect(co, &client).ok());
  ps::TableSpec user;
  user.set_name("user");
  user.set_dim(9);
  int handle = -1;
  ASSERT_TRUE(client->RegisterTable(user, &handle).ok());
  ASSERT_TRUE(client->RegisterDense("dnn/b0", {8}, std::vector<float>(8, 0.0f), &handle).ok());
  Status s = CheckServersHoldModel(StatsOf(shards.hosts()), shards.hosts(), mine);
  EXPECT_TRUE(s.ok()) << s.ToString();

  ExpectedModel wider = mine;
  wider.tables[0].second = 17;
  s = CheckServersHoldModel(StatsOf(shards.hosts()), shards.hosts(), wider);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find(shards.hosts()[0] + " holds table 'user' with embedding dimension 8"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("'mine' gives it 16"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--feature_spec"), std::string::npos) << s.message();

  ExpectedModel other = mine;
  other.tables = {{"users", 9}, {"item", 9}};
  s = CheckServersHoldModel(StatsOf(shards.hosts()), shards.hosts(), other);
  EXPECT_NE(s.message().find("holds table 'user'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("does not have"), std::string::npos) << s.message();

  ExpectedModel deeper = mine;
  deeper.dense[1].second = {9};
  s = CheckServersHoldModel(StatsOf(shards.hosts()), shards.hosts(), deeper);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("dense variable 'dnn/b0' of shape [8]"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("gives it [9]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--hidden_units"), std::string::npos) << s.message();
  deeper.dense[1].second = {8, 1};
  EXPECT_FALSE(CheckServersHoldModel(StatsOf(shards.hosts()), shards.hosts(), deeper).ok());
}

TEST(ServerCheckTest, RefusesAJobFolderTheChiefCannotWrite) {
  const std::string ok = TempFolder("writable");
  Status s = CheckJobFolderWritable(ok + "/nested");
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(fs::is_empty(ok + "/nested")) << "the probe file is removed";
  if (::geteuid() == 0) {
    // root writes through any mode bits: a folder below a plain file
    // cannot be created by anyone.
    const std::string file = TempFolder("file");
    FILE* f = fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
    s = CheckJobFolderWritable(file + "/job");
    EXPECT_EQ(s.code(), Code::kFailedPrecondition);
    EXPECT_NE(s.message().find("cannot create the job folder " + file + "/job"), std::string::npos)
        << s.message();
    fs::remove(file);
  } else {
    const std::string ro = TempFolder("readonly");
    fs::create_directories(ro);
    ::chmod(ro.c_str(), 0555);
    s = CheckJobFolderWritable(ro);
    EXPECT_NE(s.message().find("cannot write in the job folder " + ro), std::string::npos)
        << s.message();
    ::chmod(ro.c_str(), 0755);
    fs::remove_all(ro);
  }
  EXPECT_NE(s.message().find("--checkpoint"), std::string::npos) << s.message();
  fs::remove_all(ok);
}

}  // namespace
}  // namespace deepfm

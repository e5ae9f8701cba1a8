// Two ps_server shards in-process on ephemeral ports, driven through real
// gRPC channels: registration, pull, push, pull again, bad requests, stats and
// orderly shutdown.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>

#include "common/bytes.h"
#include "common/checkpoint_manifest.h"
#include "common/routing.h"
#include "proto/ps.grpc.pb.h"
#include "ps/ps_server.h"

namespace deepfm::ps {
namespace {

class TwoShards : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint32_t i = 0; i < 2; ++i) {
      ShardOptions so;
      so.shard_index = i;
      so.num_shards = 2;
      so.optimizer.type = OptimizerType::kSgd;
      so.optimizer.learning_rate = 0.25f;
      Status s;
      auto shard = Shard::Create(so, &s);
      ASSERT_TRUE(s.ok());
      ServerOptions opts;
      opts.port = 0;
      servers_.push_back(PsServer::Start(opts, std::move(shard), &s));
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_GT(servers_.back()->port(), 0);
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(64 << 20);
      args.SetMaxSendMessageSize(64 << 20);
      auto ch = grpc::CreateCustomChannel(servers_.back()->address(),
                                          grpc::InsecureChannelCredentials(), args);
      stubs_.push_back(ParameterServer::NewStub(ch));
    }
  }

  grpc::Status Call(int shard, const PullRequest& req, PullResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stubs_[shard]->Pull(&ctx, req, resp);
  }
  grpc::Status Call(int shard, const PushRequest& req, PushResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stubs_[shard]->Push(&ctx, req, resp);
  }
  uint32_t Register(int shard, const std::string& name, uint32_t dim) {
    RegisterTableRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_dim(dim);
    req.mutable_spec()->set_init_stddev(0.01f);
    req.mutable_spec()->set_seed(5);
    RegisterTableResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stubs_[shard]->RegisterTable(&ctx, req, &resp).ok());
    return resp.table_id();
  }

  std::vector<std::unique_ptr<PsServer>> servers_;
  std::vector<std::unique_ptr<ParameterServer::Stub>> stubs_;
};

TEST_F(TwoShards, PullPushPullAcrossShards) {
  const int dim = 17;
  uint32_t table[2] = {Register(0, "emb", dim), Register(1, "emb", dim)};
  Router router(2);
  std::map<uint64_t, int> where;
  std::vector<uint64_t> keys[2];
  for (uint64_t k = 1; k <= 1000; ++k) {
    const uint64_t key = Mix64(k);
    keys[router.ShardOfKey(key)].push_back(key);
  }
  ASSERT_FALSE(keys[0].empty());
  ASSERT_FALSE(keys[1].empty());
  std::vector<float> before[2];
  for (int s = 0; s < 2; ++s) {
    PullRequest req;
    auto* sp = req.add_sparse();
    sp->set_table_id(table[s]);
    AssignBytes(keys[s].data(), keys[s].size(), sp->mutable_keys());
    PullResponse resp;
    ASSERT_TRUE(Call(s, req, &resp).ok());
    CopyOut(resp.sparse(0).values(), &before[s]);
    ASSERT_EQ(before[s].size(), keys[s].size() * dim);
  }
  for (int s = 0; s < 2; ++s) {
    PushRequest req;
    req.set_global_step(1);
    if (s == 0) req.set_increment_global_step(1);
    auto* sg = req.add_sparse();
    sg->set_table_id(table[s]);
    AssignBytes(keys[s].data(), keys[s].size(), sg->mutable_keys());
    std::vector<float> g(keys[s].size() * dim);
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(i % 7) - 3.0f;
    AssignBytes(g.data(), g.size(), sg->mutable_grads());
    PushResponse resp;
    ASSERT_TRUE(Call(s, req, &resp).ok());
    EXPECT_EQ(resp.global_step(), 1);
  }
  for (int s = 0; s < 2; ++s) {
    PullRequest req;
    auto* sp = req.add_sparse();
    sp->set_table_id(table[s]);
    AssignBytes(keys[s].data(), keys[s].size(), sp->mutable_keys());
    PullResponse resp;
    ASSERT_TRUE(Call(s, req, &resp).ok());
    std::vector<float> after;
    CopyOut(resp.sparse(0).values(), &after);
    for (size_t i = 0; i < after.size(); ++i) {
      ASSERT_FLOAT_EQ(after[i], before[s][i] - 0.25f * (static_cast<float>(i % 7) - 3.0f));
    }
    EXPECT_EQ(resp.global_step(), 1);
    StatsResponse stats;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stubs_[s]->Stats(&ctx, StatsRequest(), &stats).ok());
    EXPECT_EQ(stats.shard_index(), static_cast<uint32_t>(s));
    ASSERT_EQ(stats.tables_size(), 1);
    EXPECT_EQ(stats.tables(0).rows(), keys[s].size());
    EXPECT_EQ(stats.pull_requests(), 2u);
    EXPECT_EQ(stats.push_requests(), 1u);
  }
}

TEST_F(TwoShards, BadRequestsGetInvalidArgumentAndServerKeepsServing) {
  const uint32_t t = Register(0, "emb", 4);
  const uint64_t key = 9;
  PushRequest bad;
  auto* sg = bad.add_sparse();
  sg->set_table_id(t);
  AssignBytes(&key, 1, sg->mutable_keys());
  const float g[3] = {1, 2, 3};  // 3 values for a dim-4 row
  AssignBytes(g, 3, sg->mutable_grads());
  PushResponse presp;
  grpc::Status st = Call(0, bad, &presp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("need 4 gradient values, got 3"), std::string::npos)
      << st.error_message();
  PullRequest unknown;
  unknown.add_sparse()->set_table_id(42);
  PullResponse resp;
  st = Call(0, unknown, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("unknown table id 42"), std::string::npos);
  // Still serving, and the bad push created nothing.
  StatsResponse stats;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stubs_[0]->Stats(&ctx, StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.tables(0).rows(), 0u);
}

TEST_F(TwoShards, DenseRegistrationFirstWinsAndShapeConflictFails) {
  RegisterDenseRequest req;
  req.mutable_spec()->set_name("dnn/out/bias");
  req.mutable_spec()->add_shape(1);
  const float init = 0.5f;
  AssignBytes(&init, 1, req.mutable_init_values());
  RegisterDenseResponse resp;
  const int owner = static_cast<int>(Router(2).ShardOfName("dnn/out/bias"));
  {
    grpc::ClientContext ctx;
    grpc::Status st = stubs_[1 - owner]->RegisterDense(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "the other shard must refuse it";
    EXPECT_NE(st.error_message().find("holds none of it: it lies on shard " + std::to_string(owner) + " with"), std::string::npos)
        << st.error_message();
  }
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stubs_[owner]->RegisterDense(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.created());
  }
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stubs_[owner]->RegisterDense(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.created());
  }
  req.mutable_spec()->set_shape(0, 2);
  req.clear_init_values();
  grpc::ClientContext ctx;
  grpc::Status st = stubs_[owner]->RegisterDense(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// The ownership guard: a key pulled from or pushed to a shard that does not
// own its slot is refused, with the slot and its owner named, and the shard
// creates and changes nothing.
TEST_F(TwoShards, KeysOfAnotherShardAreRefused) {
  const int dim = 3;
  const uint32_t table = Register(0, "emb", dim);
  Router router(2);
  uint64_t mine = 0, stray = 0;
  for (uint64_t k = 1; mine == 0 || stray == 0; ++k) {
    (router.ShardOfKey(Mix64(k)) == 0 ? mine : stray) = Mix64(k);
  }
  const uint32_t stray_slot = router.SlotOfKey(stray);
  const std::vector<uint64_t> keys = {mine, stray};
  PullRequest pull;
  auto* sp = pull.add_sparse();
  sp->set_table_id(table);
  AssignBytes(keys.data(), keys.size(), sp->mutable_keys());
  PullResponse presp;
  grpc::Status st = Call(0, pull, &presp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("slot " + std::to_string(stray_slot) + ", which shard 1 owns"),
            std::string::npos)
      << st.error_message();
  pull.set_read_only(true);
  EXPECT_EQ(Call(0, pull, &presp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  PushRequest push;
  push.set_global_step(1);
  push.set_increment_global_step(1);
  auto* sg = push.add_sparse();
  sg->set_table_id(table);
  AssignBytes(keys.data(), keys.size(), sg->mutable_keys());
  const std::vector<float> g(keys.size() * dim, 1.0f);
  AssignBytes(g.data(), g.size(), sg->mutable_grads());
  PushResponse push_resp;
  st = Call(0, push, &push_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("push: table 'emb'"), std::string::npos) << st.error_message();

  StatsResponse stats;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stubs_[0]->Stats(&ctx, StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.tables(0).rows(), 0u) << "a refused request created rows";
  EXPECT_EQ(stats.global_step(), 0) << "a refused push advanced the step";
}

// Bad input answered with INVALID_ARGUMENT that changes nothing: a negative
// step (it would flip Adam's bias correction) and a dense shape too large to
// hold (it used to answer UNKNOWN from a failed allocation).
TEST_F(TwoShards, NegativeStepsAndHugeShapesAreInvalid) {
  const uint32_t t = Register(0, "emb", 2);
  Router router(2);
  uint64_t key = 1;
  while (router.ShardOfKey(key) != 0) ++key;
  PushRequest push;
  push.set_global_step(-3);
  auto* sg = push.add_sparse();
  sg->set_table_id(t);
  AssignBytes(&key, 1, sg->mutable_keys());
  const float g[2] = {1, 1};
  AssignBytes(g, 2, sg->mutable_grads());
  PushResponse presp;
  grpc::Status st = Call(0, push, &presp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("global_step -3 is negative"), std::string::npos) << st.error_message();
  EXPECT_EQ(servers_[0]->shard().table(t)->size(), 0u);

  const std::string name = "huge";
  const int owner = static_cast<int>(router.ShardOfName(name));
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{int64_t{1} << 40}, {int64_t{1} << 31, int64_t{1} << 31},
                                         {int64_t{1} << 62, 4}, {1, 1, 1, 1, 1, 1, 1, 1, 1}}) {
    RegisterDenseRequest req;
    req.mutable_spec()->set_name(name);
    for (int64_t d : shape) req.mutable_spec()->add_shape(d);
    RegisterDenseResponse resp;
    grpc::ClientContext ctx;
    st = stubs_[owner]->RegisterDense(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << shape.size() << " dims: " << st.error_message();
  }
  EXPECT_EQ(servers_[owner]->shard().dense().num_variables(), 0u);
}

TEST_F(TwoShards, ShutdownRpcStopsTheServer) {
  grpc::ClientContext ctx;
  ShutdownResponse resp;
  ASSERT_TRUE(stubs_[1]->Shutdown(&ctx, ShutdownRequest(), &resp).ok());
  servers_[1]->Wait();  // returns because the RPC stopped it
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  StatsResponse stats;
  grpc::Status st = stubs_[1]->Stats(&ctx2, StatsRequest(), &stats);
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace deepfm::ps

namespace deepfm::ps {
namespace {

// Save writes only below the shard's own checkpoint root.
TEST(SaveRuleTest, OnlyRelativeFoldersBelowTheRoot) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / ("save_rule_" + std::to_string(getpid()));
  const fs::path outside = fs::path(::testing::TempDir()) / ("outside_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::remove_all(outside);
  fs::create_directories(outside);
  auto start = [](const std::string& checkpoint_root) {
    ShardOptions so;
    so.optimizer.type = OptimizerType::kSgd;
    Status s;
    ServerOptions opts;
    opts.checkpoint_root = checkpoint_root;
    auto server = PsServer::Start(opts, Shard::Create(so, &s), &s);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return server;
  };
  auto server = start(root.string());
  auto stub = ParameterServer::NewStub(grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  auto save = [&](const std::string& dir, int64_t step = 1) {
    grpc::ClientContext ctx;
    SaveRequest req;
    req.set_dir(dir);
    req.set_global_step(step);
    SaveResponse resp;
    return stub->Save(&ctx, req, &resp);
  };
  for (const std::string& bad : {outside.string(), std::string("../") + outside.filename().string(),
                                 std::string("a/../../x"), std::string("")}) {
    grpc::Status st = save(bad);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "'" << bad << "': " << st.error_message();
  }
  EXPECT_TRUE(fs::is_empty(outside)) << "a refused save wrote outside the root";
  EXPECT_FALSE(fs::exists(root / ".." / "x"));
  {
    // A live shard saves only a cut it took in order: the cut first.
    grpc::ClientContext ctx;
    CutRequest req;
    CutResponse resp;
    ASSERT_TRUE(stub->Cut(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.global_step(), 0);
  }
  grpc::Status st = save("ckpt-1.tmp");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "saved step 1 with no cut at step 1: " << st.error_message();
  st = save("ckpt-0.tmp", 0);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(fs::exists(root / "ckpt-0.tmp" / ShardFileName(0, 1)));
  // A shard without a root saves nothing.
  auto rootless = start("");
  stub = ParameterServer::NewStub(grpc::CreateChannel(rootless->address(), grpc::InsecureChannelCredentials()));
  st = save("ckpt-1.tmp");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  fs::remove_all(root);
  fs::remove_all(outside);
}

}  // namespace
}  // namespace deepfm::ps

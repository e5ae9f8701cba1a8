// PsClient against real shards over loopback gRPC: keys split by owner and
// merged back in request order, dense variables on their owners, routing
// disagreement caught by the servers, and the retry and deadline rules
// (through a fault-injecting service in front of a real Shard).
#include "worker/ps_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "common/bf16.h"
#include "common/random.h"
#include "proto/ps.grpc.pb.h"
#include "ps/ps_server.h"
#include "worker/deepfm_model.h"
#include "tests/support/loopback_shards.h"

namespace deepfm {
namespace {

constexpr float kLr = 0.5f;
constexpr uint64_t kSeed = 77;
constexpr float kStddev = 0.1f;
constexpr int kDim = 5;

ps::TableSpec Spec() {
  ps::TableSpec spec;
  spec.set_name("emb");
  spec.set_dim(kDim);
  spec.set_init_stddev(kStddev);
  spec.set_seed(kSeed);
  return spec;
}

std::unique_ptr<ps::Shard> NewShard(uint32_t index, uint32_t n) {
  ps::ShardOptions so;
  so.shard_index = index;
  so.num_shards = n;
  so.optimizer.type = ps::OptimizerType::kSgd;
  so.optimizer.learning_rate = kLr;
  Status s;
  auto shard = ps::Shard::Create(so, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return shard;
}

class Shards : public testing_util::LoopbackShards {
 public:
  explicit Shards(uint32_t n, int64_t dense_slice_bytes = kDefaultDenseSliceBytes)
      : LoopbackShards(n, ps::OptimizerType::kSgd, kLr, dense_slice_bytes) {}
};

std::unique_ptr<PsClient> Connect(const std::vector<std::string>& hosts, PsClientOptions co = {}) {
  co.hosts = hosts;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return client;
}

// Distinct keys in a shuffled order, so request order is unrelated to shard order.
std::vector<uint64_t> ShuffledKeys(int n) {
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = Mix64(1000 + i);
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(4));
  return keys;
}

// A gradient that depends on the key and the column only, so a gradient
// delivered with the wrong key shows up as the wrong update.
float GradOf(uint64_t key, int j) {
  return static_cast<float>(static_cast<int>(key % 13) - 6 + j) / 8;
}

TEST(PsClientTest, SplitsKeysByOwnerAndMergesRowsInRequestOrder) {
  Shards shards(3);
  auto client = Connect(shards.hosts());
  int table = -1;
  ASSERT_TRUE(client->RegisterTable(Spec(), &table).ok());
  const std::vector<uint64_t> keys = ShuffledKeys(900);
  std::vector<float> rows(keys.size() * kDim);
  int64_t step = -1;
  ASSERT_TRUE(client->Pull(table, keys.data(), keys.size(), rows.data(), {}, false, &step).ok());
  EXPECT_EQ(step, 0);
  std::vector<float> want(kDim);
  for (size_t i = 0; i < keys.size(); ++i) {
    InitRowNormal(keys[i], kSeed, kStddev, want.data(), kDim);
    for (int j = 0; j < kDim; ++j) ASSERT_EQ(rows[i * kDim + j], want[j]) << "key #" << i;
  }
  // Each shard received exactly the keys it owns, and nothing else.
  const Router router(3);
  std::map<uint32_t, uint64_t> per_shard;
  for (uint64_t k : keys) ++per_shard[router.ShardOfKey(k)];
  for (int s = 0; s < 3; ++s) {
    ASSERT_GT(per_shard[s], 200u);
    EXPECT_EQ(shards.shard(s).table(0)->size(), per_shard[s]) << "shard " << s;
  }

  // Gradients travel with their keys: each row moves by -lr * GradOf(key).
  std::vector<float> grads(keys.size() * kDim);
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int j = 0; j < kDim; ++j) grads[i * kDim + j] = GradOf(keys[i], j);
  }
  step = 0;
  ASSERT_TRUE(client->Push(table, keys.data(), keys.size(), grads.data(), {}, true, &step).ok());
  EXPECT_EQ(step, 1);
  std::vector<float> after(rows.size());
  ASSERT_TRUE(client->Pull(table, keys.data(), keys.size(), after.data(), {}, false, nullptr).ok());
  for (size_t i = 0; i < after.size(); ++i) {
    ASSERT_FLOAT_EQ(after[i], rows[i] - kLr * grads[i]) << "value " << i;
  }
}

TEST(PsClientTest, DenseVariablesLiveOnTheirOwnerAndRoundTrip) {
  Shards shards(3);
  auto client = Connect(shards.hosts());
  int table = -1;
  ASSERT_TRUE(client->RegisterTable(Spec(), &table).ok());
  const std::vector<std::string> names = {"a/kernel", "b/bias", "c/kernel", "d/bias", "e"};
  std::vector<int> handles;
  std::vector<std::vector<float>> init;
  for (size_t v = 0; v < names.size(); ++v) {
    init.push_back(std::vector<float>(v + 2));
    for (size_t i = 0; i < init[v].size(); ++i) init[v][i] = static_cast<float>(10 * v + i);
    int h = -1;
    ASSERT_TRUE(client->RegisterDense(names[v], {static_cast<int64_t>(v + 2)}, init[v], &h).ok());
    EXPECT_EQ(client->DenseSize(h), static_cast<int64_t>(v + 2));
    handles.push_back(h);
  }
  const Router router(3);
  for (int s = 0; s < 3; ++s) {
    uint64_t expect = 0;
    for (size_t v = 0; v < names.size(); ++v) {
      if (router.ShardOfName(names[v]) == static_cast<uint32_t>(s)) expect += v + 2;
    }
    EXPECT_EQ(shards.shard(s).dense().TotalElements(), expect) << "shard " << s;
  }
  // Pull every variable but the second; the skipped buffer stays untouched.
  std::vector<std::vector<float>> got(names.size());
  std::vector<float*> out;
  for (size_t v = 0; v < names.size(); ++v) {
    got[v].assign(v + 2, -1.0f);
    out.push_back(v == 1 ? nullptr : got[v].data());
  }
  ASSERT_TRUE(client->Pull(table, nullptr, 0, nullptr, out, true, nullptr).ok());
  for (size_t v = 0; v < names.size(); ++v) {
    EXPECT_EQ(got[v], v == 1 ? std::vector<float>(v + 2, -1.0f) : init[v]) << names[v];
  }
  // Push a gradient to the fourth only.
  const std::vector<float> g(5, 2.0f);
  std::vector<const float*> dg(names.size(), nullptr);
  dg[3] = g.data();
  int64_t step = 0;
  ASSERT_TRUE(client->Push(table, nullptr, 0, nullptr, dg, true, &step).ok());
  out[1] = got[1].data();
  ASSERT_TRUE(client->Pull(table, nullptr, 0, nullptr, out, true, nullptr).ok());
  for (size_t v = 0; v < names.size(); ++v) {
    std::vector<float> want = init[v];
    if (v == 3) {
      for (float& x : want) x -= kLr * 2.0f;
    }
    EXPECT_EQ(got[v], want) << names[v];
  }
}

// DeepFM's default dense variables over 4 shards: the large kernels are cut
// in slices, so no shard holds or moves more than 30 % of the dense bytes,
// while the caller still pulls and pushes whole tensors.
TEST(PsClientTest, PartitionedDenseVariablesSpreadOverTheShardsAndLookWhole) {
  Shards shards(4);
  auto client = Connect(shards.hosts());
  int table = -1;
  ASSERT_TRUE(client->RegisterTable(Spec(), &table).ok());
  const std::vector<DenseTensorSpec> specs = DeepFMDenseSpecs(DeepFMConfig());
  std::vector<std::vector<float>> init(specs.size()), got(specs.size());
  std::vector<float*> out;
  std::vector<const float*> grads;
  std::vector<std::vector<float>> g(specs.size());
  int64_t total = 0;
  for (size_t v = 0; v < specs.size(); ++v) {
    init[v].resize(specs[v].size());
    for (size_t i = 0; i < init[v].size(); ++i) init[v][i] = static_cast<float>((i * 7 + v) % 101) / 64;
    int h = -1;
    ASSERT_TRUE(client->RegisterDense(specs[v].name, specs[v].shape, init[v], &h).ok()) << specs[v].name;
    got[v].assign(init[v].size(), -1.0f);
    out.push_back(got[v].data());
    g[v].assign(init[v].size(), 0.25f);
    grads.push_back(g[v].data());
    total += specs[v].size();
  }
  uint64_t held = 0;
  for (int s = 0; s < 4; ++s) {
    const uint64_t n = shards.shard(s).dense().TotalElements();
    EXPECT_LE(n, 0.30 * total) << "shard " << s << " holds " << n << " of " << total;
    held += n;
  }
  EXPECT_EQ(held, static_cast<uint64_t>(total));
  WireBytes pulled;
  ASSERT_TRUE(client->Pull(table, nullptr, 0, nullptr, out, true, nullptr, &pulled).ok());
  EXPECT_EQ(got, init);
  ASSERT_EQ(pulled.shard_dense.size(), 4u);
  uint64_t moved = 0;
  for (int s = 0; s < 4; ++s) {
    EXPECT_LE(pulled.shard_dense[s], 0.30 * total * sizeof(float)) << "shard " << s;
    moved += pulled.shard_dense[s];
  }
  EXPECT_EQ(moved, total * sizeof(float));
  int64_t step = 0;
  WireBytes pushed;
  ASSERT_TRUE(client->Push(table, nullptr, 0, nullptr, grads, true, &step, &pushed).ok());
  EXPECT_EQ(pushed.shard_dense, pulled.shard_dense);
  ASSERT_TRUE(client->Pull(table, nullptr, 0, nullptr, out, true, nullptr).ok());
  for (size_t v = 0; v < specs.size(); ++v) {
    for (size_t i = 0; i < init[v].size(); ++i) {
      ASSERT_EQ(got[v][i], init[v][i] - kLr * 0.25f) << specs[v].name << " [" << i << "]";
    }
  }
}

// Trainers and shards that cut dense variables differently fail at
// registration, naming the flag, before any step.
TEST(PsClientTest, ADisagreeingSliceSizeFailsAtRegistration) {
  Shards shards(2);
  PsClientOptions co;
  co.dense_slice_bytes = 0;
  auto client = Connect(shards.hosts(), co);
  int h = -1;
  Status s = client->RegisterDense("dnn/layer0/kernel", {429, 1024}, {}, &h);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("--dense_slice_kb"), std::string::npos) << s.message();
}

TEST(PsClientTest, Bf16WireRoundsBothWays) {
  Shards shards(2);
  PsClientOptions co;
  co.wire_dtype = ps::BF16;
  auto client = Connect(shards.hosts(), co);
  int table = -1;
  ASSERT_TRUE(client->RegisterTable(Spec(), &table).ok());
  const std::vector<uint64_t> keys = ShuffledKeys(100);
  std::vector<float> rows(keys.size() * kDim), want(kDim);
  ASSERT_TRUE(client->Pull(table, keys.data(), keys.size(), rows.data(), {}, false, nullptr).ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    InitRowNormal(keys[i], kSeed, kStddev, want.data(), kDim);
    for (int j = 0; j < kDim; ++j) {
      ASSERT_EQ(rows[i * kDim + j], Bf16ToFloat(FloatToBf16(want[j]))) << "key #" << i;
    }
  }
  // The server applies the bf16-rounded gradient to its fp32 row.
  std::vector<float> grads(rows.size(), 1.0f / 3.0f);
  int64_t step = 0;
  ASSERT_TRUE(client->Push(table, keys.data(), keys.size(), grads.data(), {}, true, &step).ok());
  const float g = Bf16ToFloat(FloatToBf16(1.0f / 3.0f));
  ASSERT_NE(g, 1.0f / 3.0f);
  const Router router(2);
  for (size_t i = 0; i < keys.size(); ++i) {
    float row[kDim];
    shards.shard(router.ShardOfKey(keys[i])).table(0)->Pull(&keys[i], 1, row);
    InitRowNormal(keys[i], kSeed, kStddev, want.data(), kDim);
    for (int j = 0; j < kDim; ++j) ASSERT_FLOAT_EQ(row[j], want[j] - kLr * g);
  }
}

// A worker whose routing disagrees with the servers' fails at its first
// pull, with the servers' reason, instead of training on the wrong rows.
TEST(PsClientTest, RoutingThatDisagreesWithTheServersFailsAtTheFirstPull) {
  Shards shards(2);
  PsClientOptions other_slots;
  other_slots.num_slots = 1024;
  auto client = Connect(shards.hosts(), other_slots);
  int table = -1;
  ASSERT_TRUE(client->RegisterTable(Spec(), &table).ok());
  const std::vector<uint64_t> keys = ShuffledKeys(200);
  std::vector<float> rows(keys.size() * kDim);
  Status s = client->Pull(table, keys.data(), keys.size(), rows.data(), {}, false, nullptr);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("routes keys differently"), std::string::npos) << s.message();

  // Another shard count: two shards of a three-shard job listed as the whole job.
  Shards three(3);
  auto partial = Connect({three.hosts()[0], three.hosts()[1]});
  ASSERT_TRUE(partial->RegisterTable(Spec(), &table).ok());
  s = partial->Pull(table, keys.data(), keys.size(), rows.data(), {}, false, nullptr);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(three.shard(i).table(0)->size(), 0u) << "a refused pull created rows on shard " << i;
  }
}

// In front of a real shard: fails the first `fail_pulls` pulls with
// `fail_code`, or answers each pull after `delay_ms`.
class FaultyService final : public ps::ParameterServer::Service {
 public:
  FaultyService(ps::Shard* shard, int fail_pulls, grpc::StatusCode fail_code, int delay_ms = 0)
      : shard_(shard), fail_pulls_(fail_pulls), fail_code_(fail_code), delay_ms_(delay_ms) {}
  grpc::Status RegisterTable(grpc::ServerContext*, const ps::RegisterTableRequest* req,
                             ps::RegisterTableResponse* resp) override {
    return ps::ToGrpc(shard_->RegisterTable(*req, resp));
  }
  grpc::Status Pull(grpc::ServerContext*, const ps::PullRequest* req,
                    ps::PullResponse* resp) override {
    const int n = ++pulls_;
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (n <= fail_pulls_) return grpc::Status(fail_code_, "injected failure " + std::to_string(n));
    return ps::ToGrpc(shard_->Pull(*req, resp));
  }
  int pulls() const { return pulls_.load(); }

 private:
  ps::Shard* shard_;
  int fail_pulls_;
  grpc::StatusCode fail_code_;
  int delay_ms_;
  std::atomic<int> pulls_{0};
};

class FaultyServer {
 public:
  FaultyServer(int fail_pulls, grpc::StatusCode code, int delay_ms = 0)
      : shard_(NewShard(0, 1)), service_(shard_.get(), fail_pulls, code, delay_ms) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
  }
  ~FaultyServer() { server_->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int pulls() const { return service_.pulls(); }

 private:
  std::unique_ptr<ps::Shard> shard_;
  FaultyService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

Status PullOnce(PsClient* client) {
  int table = -1;
  Status s = client->RegisterTable(Spec(), &table);
  if (!s.ok()) return s;
  const uint64_t key = 5;
  float row[kDim];
  return client->Pull(table, &key, 1, row, {}, false, nullptr);
}

PsClientOptions QuickRetries(int max_retries) {
  PsClientOptions co;
  co.max_retries = max_retries;
  co.initial_backoff_ms = 5;
  co.rpc_deadline_ms = 5000;
  return co;
}

TEST(PsClientTest, UnavailableIsRetriedUpToTheLimit) {
  FaultyServer flaky(2, grpc::StatusCode::UNAVAILABLE);
  auto client = Connect({flaky.address()}, QuickRetries(3));
  Status s = PullOnce(client.get());
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(flaky.pulls(), 3);  // two failures, then the answer

  FaultyServer down(100, grpc::StatusCode::UNAVAILABLE);
  client = Connect({down.address()}, QuickRetries(2));
  s = PullOnce(client.get());
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(down.pulls(), 3);  // the first try and two retries
  EXPECT_NE(s.message().find(down.address()), std::string::npos) << s.message();
}

TEST(PsClientTest, OtherErrorsAreNotRetried) {
  FaultyServer bad(100, grpc::StatusCode::INVALID_ARGUMENT);
  auto client = Connect({bad.address()}, QuickRetries(5));
  Status s = PullOnce(client.get());
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.pulls(), 1);
  EXPECT_NE(s.message().find("injected failure 1"), std::string::npos) << s.message();
}

TEST(PsClientTest, ASlowShardIsADeadlineErrorNamingItsAddress) {
  FaultyServer slow(0, grpc::StatusCode::OK, /*delay_ms=*/1500);
  PsClientOptions co = QuickRetries(0);
  co.rpc_deadline_ms = 200;
  auto client = Connect({slow.address()}, co);
  const auto start = std::chrono::steady_clock::now();
  Status s = PullOnce(client.get());
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(slow.address()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no answer within 200 ms"), std::string::npos) << s.message();
  EXPECT_LT(waited, 1.2) << "the client waited past its deadline";
}

}  // namespace
}  // namespace deepfm

// Parameter-server throughput: keys/s for Pull and for Push+apply (Adam,
// D=16 so rows are 17 floats) in batches of 10k unique keys, in-process and
// over loopback gRPC, with 1 and 2 server threads; and table bytes per key.
// Prints figures; not a test.
#include <gflags/gflags.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/hash.h"
#include "common/routing.h"
#include "common/timing.h"
#include "proto/ps.grpc.pb.h"
#include "ps/ps_server.h"

DEFINE_int64(keys, 1000000, "distinct keys in the table");
DEFINE_int32(batch, 10000, "unique keys per request");
DEFINE_double(seconds, 2.0, "time per measurement");
DEFINE_string(json_out, "",
              "also write the figures here as JSON (keys/s by mode and threads), for "
              "bench/scale_model.py");
DEFINE_int32(shards, 1,
             "the measured shard is shard 0 of this many, and every key sent to it is one it owns "
             "(so a multi-shard job's per-key ownership check is on the measured path)");

namespace deepfm::ps {
namespace {

constexpr int kDim = 17;

std::unique_ptr<Shard> MakeShard() {
  ShardOptions so;
  so.num_shards = FLAGS_shards;
  so.optimizer.type = OptimizerType::kAdam;
  Status s;
  return Shard::Create(so, &s);
}

// Key number i of the table: the i-th of Mix64(0), Mix64(1), ... that shard 0
// owns. Shard 0's keys are a fixed fraction (about 1 / --shards) of them.
uint64_t OwnedKey(uint64_t i) {
  static const Router router(FLAGS_shards);
  static std::vector<uint64_t> keys;
  static uint64_t next = 0;
  for (; keys.size() <= i; ++next) {
    if (router.ShardOfKey(Mix64(next)) == 0) keys.push_back(Mix64(next));
  }
  return keys[i];
}

std::vector<std::vector<uint64_t>> MakeBatches(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<uint64_t>> out(count);
  for (auto& b : out) {
    b.resize(FLAGS_batch);
    // Consecutive ranges of a random start give unique keys within a batch.
    const uint64_t start = rng() % (FLAGS_keys - FLAGS_batch);
    for (int i = 0; i < FLAGS_batch; ++i) b[i] = OwnedKey(start + i);
  }
  return out;
}

void BuildRequests(const std::vector<std::vector<uint64_t>>& batches,
                   std::vector<PullRequest>* pulls, std::vector<PushRequest>* pushes) {
  std::vector<float> g(FLAGS_batch * kDim, 1e-3f);
  for (const auto& b : batches) {
    PullRequest p;
    auto* sp = p.add_sparse();
    sp->set_table_id(0);
    AssignBytes(b.data(), b.size(), sp->mutable_keys());
    pulls->push_back(p);
    PushRequest q;
    q.set_global_step(1);
    auto* sg = q.add_sparse();
    sg->set_table_id(0);
    AssignBytes(b.data(), b.size(), sg->mutable_keys());
    AssignBytes(g.data(), g.size(), sg->mutable_grads());
    pushes->push_back(q);
  }
}

// Runs fn(thread, iteration) on `threads` threads for FLAGS_seconds; returns keys/s.
template <typename Fn>
double Measure(int threads, Fn fn) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0};
  std::vector<std::thread> ts;
  Stopwatch sw;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      int64_t n = 0;
      for (int i = 0; !stop.load(std::memory_order_relaxed); ++i, ++n) fn(t, i);
      done += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_seconds));
  stop = true;
  for (auto& th : ts) th.join();
  return done.load() * static_cast<double>(FLAGS_batch) / sw.Seconds();
}

void Register(Shard* shard) {
  RegisterTableRequest req;
  req.mutable_spec()->set_name("emb");
  req.mutable_spec()->set_dim(kDim);
  req.mutable_spec()->set_init_stddev(0.01f);
  RegisterTableResponse resp;
  shard->RegisterTable(req, &resp);
}

void Fill(Shard* shard) {
  Stopwatch sw;
  std::vector<uint64_t> keys(FLAGS_batch);
  std::vector<float> out(FLAGS_batch * kDim);
  for (int64_t k = 0; k < FLAGS_keys; k += FLAGS_batch) {
    const int n = static_cast<int>(std::min<int64_t>(FLAGS_batch, FLAGS_keys - k));
    for (int i = 0; i < n; ++i) keys[i] = OwnedKey(k + i);
    shard->table(0)->Pull(keys.data(), n, out.data());
  }
  const double s = sw.Seconds();
  const size_t bytes = shard->table(0)->MemoryBytes();
  printf("table fill (row creation): %.2f M keys/s; %zu rows, %.1f MiB, %.1f bytes/key "
         "(payload %d: 17 values + Adam m,v)\n",
         FLAGS_keys / s / 1e6, shard->table(0)->size(), bytes / 1048576.0,
         static_cast<double>(bytes) / shard->table(0)->size(), (kDim * 3) * 4);
}

}  // namespace
}  // namespace deepfm::ps

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  using namespace deepfm::ps;
  const auto batches = MakeBatches(64, 1);
  std::vector<PullRequest> pulls;
  std::vector<PushRequest> pushes;
  BuildRequests(batches, &pulls, &pushes);
  printf("ps_bench: Adam, dim %d, %d unique keys per request, %lld keys in table, %d hw threads\n",
         kDim, FLAGS_batch, static_cast<long long>(FLAGS_keys), std::thread::hardware_concurrency());
  printf("%-28s %8s %14s %14s\n", "mode", "threads", "pull Mkeys/s", "push Mkeys/s");
  nlohmann::json out = {{"batch", FLAGS_batch}, {"keys", FLAGS_keys}, {"dim", kDim}};

  {
    auto shard = MakeShard();
    Register(shard.get());
    Fill(shard.get());
    for (int threads : {1, 2}) {
      const double pull = Measure(threads, [&](int t, int i) {
        PullResponse resp;
        shard->Pull(pulls[(i * 2 + t) % pulls.size()], &resp);
      });
      const double push = Measure(threads, [&](int t, int i) {
        PushResponse resp;
        shard->Push(pushes[(i * 2 + t) % pushes.size()], &resp);
      });
      printf("%-28s %8d %14.2f %14.2f\n", "in-process (Shard)", threads, pull / 1e6, push / 1e6);
      out["in_process"][std::to_string(threads)] = {{"pull_keys_per_s", pull},
                                                    {"push_keys_per_s", push}};
    }
  }
  for (int threads : {1, 2}) {
    auto shard = MakeShard();
    Register(shard.get());
    Fill(shard.get());
    ServerOptions so;
    so.threads = threads;
    deepfm::Status st;
    auto server = PsServer::Start(so, std::move(shard), &st);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    std::vector<std::unique_ptr<ParameterServer::Stub>> stubs;
    for (int t = 0; t < threads; ++t) {
      args.SetInt("bench_channel_index", t);  // distinct channels, not one shared connection
      stubs.push_back(ParameterServer::NewStub(
          grpc::CreateCustomChannel(server->address(), grpc::InsecureChannelCredentials(), args)));
    }
    const double pull = Measure(threads, [&](int t, int i) {
      grpc::ClientContext ctx;
      PullResponse resp;
      stubs[t]->Pull(&ctx, pulls[(i * 2 + t) % pulls.size()], &resp);
    });
    const double push = Measure(threads, [&](int t, int i) {
      grpc::ClientContext ctx;
      PushResponse resp;
      stubs[t]->Push(&ctx, pushes[(i * 2 + t) % pushes.size()], &resp);
    });
    printf("%-28s %8d %14.2f %14.2f\n", "loopback gRPC (PsServer)", threads, pull / 1e6, push / 1e6);
    out["grpc"][std::to_string(threads)] = {{"pull_keys_per_s", pull}, {"push_keys_per_s", push}};
  }
  printf("(loopback rows: client and server share this machine's cores; 'threads' is both the\n"
         " server's handler threads and the number of concurrent clients)\n");
  if (!FLAGS_json_out.empty()) std::ofstream(FLAGS_json_out) << out.dump(2) << "\n";
  return 0;
}

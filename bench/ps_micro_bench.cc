// Google Benchmark micro-benchmarks of the parameter server's parts: the
// embedding table's pull and push (with each optimizer) in batches of
// unique keys, and each optimizer's apply over a dense tensor the size of
// the default DeepFM's DNN. Prints figures; not a test.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "common/bytes.h"
#include "common/hash.h"
#include "ps/embedding_table.h"
#include "ps/optimizer.h"
#include "ps/shard.h"

namespace deepfm::ps {
namespace {

constexpr int kDim = 17;           // D = 16 plus the first-order weight
constexpr int kBatch = 10000;      // unique keys per request
constexpr int64_t kKeys = 1 << 20;  // rows in the table

std::unique_ptr<Optimizer> Make(OptimizerType t) {
  OptimizerOptions o;
  o.type = t;
  std::unique_ptr<Optimizer> opt;
  MakeOptimizer(o, &opt);
  return opt;
}

std::vector<uint64_t> Batch(int64_t start) {
  std::vector<uint64_t> keys(kBatch);
  for (int i = 0; i < kBatch; ++i) keys[i] = Mix64((start + i * 97) % kKeys + 1);
  return keys;
}

void BM_TablePull(benchmark::State& state) {
  auto opt = Make(OptimizerType::kAdam);
  TableOptions o;
  o.dim = kDim;
  EmbeddingTable table(o, opt.get());
  std::vector<float> out(kBatch * kDim);
  for (int64_t s = 0; s < kKeys; s += kBatch) table.Pull(Batch(s).data(), kBatch, out.data());
  int64_t i = 0;
  for (auto _ : state) {
    const auto keys = Batch((i++ * 7919) % kKeys);
    table.Pull(keys.data(), kBatch, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_TablePull)->Unit(benchmark::kMicrosecond);

void BM_TablePush(benchmark::State& state) {
  auto opt = Make(static_cast<OptimizerType>(state.range(0)));
  state.SetLabel(OptimizerName(opt->type()));
  TableOptions o;
  o.dim = kDim;
  EmbeddingTable table(o, opt.get());
  std::vector<float> out(kBatch * kDim), grads(kBatch * kDim, 1e-3f);
  for (int64_t s = 0; s < kKeys; s += kBatch) table.Pull(Batch(s).data(), kBatch, out.data());
  int64_t i = 0;
  for (auto _ : state) {
    const auto keys = Batch((i * 7919) % kKeys);
    table.Push(keys.data(), kBatch, grads.data(), ++i);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_TablePush)
    ->DenseRange(0, 4)
    ->Unit(benchmark::kMicrosecond);  // sgd, adam, adamasync, adagrad, adagraddecay

// Shard::Pull of 10k keys on shard 0 of range(0) shards, every key one it
// owns: with 2 shards the shard checks each key's owner, with 1 it skips the
// check (every slot is its own), so the two rows differ by that check.
void BM_ShardPull(benchmark::State& state) {
  const uint32_t shards = static_cast<uint32_t>(state.range(0));
  state.SetLabel(shards == 1 ? "1 shard (no ownership check)" : "shard 0 of 2 (ownership check)");
  ShardOptions so;
  so.num_shards = shards;
  so.optimizer.type = OptimizerType::kAdam;
  Status st;
  auto shard = Shard::Create(so, &st);
  RegisterTableRequest reg;
  reg.mutable_spec()->set_name("emb");
  reg.mutable_spec()->set_dim(kDim);
  RegisterTableResponse reg_resp;
  shard->RegisterTable(reg, &reg_resp);
  std::vector<uint64_t> owned;
  for (uint64_t n = 1; owned.size() < static_cast<size_t>(kKeys); ++n) {
    if (shard->router().ShardOfKey(Mix64(n)) == 0) owned.push_back(Mix64(n));
  }
  std::vector<float> out(kBatch * kDim);
  for (int64_t s = 0; s < kKeys; s += kBatch) shard->table(0)->Pull(&owned[s], std::min<int64_t>(kBatch, kKeys - s), out.data());
  std::vector<PullRequest> requests(64);
  for (size_t r = 0; r < requests.size(); ++r) {
    std::vector<uint64_t> keys(kBatch);
    for (int i = 0; i < kBatch; ++i) keys[i] = owned[(r * 7919 + i * 97) % kKeys];
    auto* sp = requests[r].add_sparse();
    sp->set_table_id(0);
    AssignBytes(keys.data(), keys.size(), sp->mutable_keys());
  }
  int64_t i = 0;
  for (auto _ : state) {
    PullResponse resp;
    shard->Pull(requests[i++ % requests.size()], &resp);
    benchmark::DoNotOptimize(resp);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ShardPull)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

// One optimizer step over 709,664 dense parameters (the default DNN).
void BM_DenseApply(benchmark::State& state) {
  auto opt = Make(static_cast<OptimizerType>(state.range(0)));
  state.SetLabel(OptimizerName(opt->type()));
  const int n = 709664;
  std::vector<float> w(n, 0.1f), g(n, 1e-3f), slots(opt->SlotFloats(n));
  opt->InitSlots(slots.data(), n);
  VariableOptState st;
  int64_t step = 0;
  for (auto _ : state) {
    const PushConstants c = opt->BeginPush(&st, ++step);
    opt->Apply(w.data(), slots.data(), g.data(), n, c);
    benchmark::DoNotOptimize(w.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * sizeof(float) * (2 + opt->SlotFloats(1)));
}
BENCHMARK(BM_DenseApply)->DenseRange(0, 4)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace deepfm::ps

BENCHMARK_MAIN();

#include "ps/embedding_table.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/random.h"

namespace deepfm::ps {
namespace {

std::unique_ptr<Optimizer> MakeOpt(OptimizerType t) {
  OptimizerOptions o;
  o.type = t;
  o.learning_rate = 0.05f;
  std::unique_ptr<Optimizer> opt;
  EXPECT_TRUE(MakeOptimizer(o, &opt).ok());
  return opt;
}

TableOptions Opts(int dim) {
  TableOptions t;
  t.name = "emb";
  t.dim = dim;
  t.init_stddev = 0.01f;
  t.seed = 99;
  return t;
}

TEST(EmbeddingTableTest, RowsStartAsAFunctionOfKeyAndSeed) {
  auto opt = MakeOpt(OptimizerType::kSgd);
  EmbeddingTable a(Opts(17), opt.get());
  TableOptions other = Opts(17);
  other.num_stripes = 4;  // layout must not matter
  EmbeddingTable b(other, opt.get());
  const uint64_t keys[3] = {5, 1ull << 63, 0};
  std::vector<float> ra(3 * 17), rb(3 * 17), expect(17);
  a.Pull(keys, 3, ra.data());
  const uint64_t reversed[3] = {0, 1ull << 63, 5};
  b.Pull(reversed, 3, rb.data());
  InitRowNormal(5, 99, 0.01f, expect.data(), 17);
  for (int j = 0; j < 17; ++j) {
    EXPECT_EQ(ra[j], expect[j]);
    EXPECT_EQ(ra[j], rb[2 * 17 + j]);
  }
  EXPECT_EQ(a.size(), 3u);
}

// One stripe once indexed past its one-element array (a shift by 63 left
// the top hash bit); every stripe count from 1 up must hold every key.
TEST(EmbeddingTableTest, AnyStripeCountHoldsEveryKey) {
  auto opt = MakeOpt(OptimizerType::kSgd);
  for (int stripes : {1, 2, 3, 256}) {
    SCOPED_TRACE(std::to_string(stripes) + " stripes");
    TableOptions o = Opts(4);
    o.num_stripes = stripes;
    EmbeddingTable t(o, opt.get());
    std::vector<uint64_t> keys(2000);
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = Mix64(i);
    std::vector<float> rows(keys.size() * 4), again(keys.size() * 4), expect(4);
    t.Pull(keys.data(), keys.size(), rows.data());
    EXPECT_EQ(t.size(), keys.size());
    t.Pull(keys.data(), keys.size(), again.data(), /*create_missing=*/false);
    EXPECT_EQ(rows, again);
    EXPECT_GE(t.num_stripes(), stripes);
    EXPECT_LE(t.num_stripes(), 2 * stripes);
    InitRowNormal(keys[1999], 99, 0.01f, expect.data(), 4);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(rows[1999 * 4 + j], expect[j]);
  }
}

TEST(EmbeddingTableTest, ReadOnlyPullDoesNotCreateRows) {
  auto opt = MakeOpt(OptimizerType::kSgd);
  EmbeddingTable t(Opts(4), opt.get());
  const uint64_t key = 42;
  std::vector<float> ro(4), rw(4);
  t.Pull(&key, 1, ro.data(), /*create_missing=*/false);
  EXPECT_EQ(t.size(), 0u);
  t.Pull(&key, 1, rw.data());
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(ro, rw);
}

TEST(EmbeddingTableTest, PushAppliesOptimizerToTouchedRowsOnly) {
  auto opt = MakeOpt(OptimizerType::kSgd);
  EmbeddingTable t(Opts(2), opt.get());
  const uint64_t keys[2] = {1, 2};
  std::vector<float> before(4), after(4);
  t.Pull(keys, 2, before.data());
  const float g[2] = {1.0f, -2.0f};
  t.Push(&keys[0], 1, g, 1);
  t.Pull(keys, 2, after.data());
  EXPECT_FLOAT_EQ(after[0], before[0] - 0.05f);
  EXPECT_FLOAT_EQ(after[1], before[1] + 0.1f);
  EXPECT_EQ(after[2], before[2]);
  EXPECT_EQ(after[3], before[3]);
  int visited = 0;
  t.ForEachRow([&](uint64_t key, const float*, const float*, RowMeta meta) {
    ++visited;
    EXPECT_EQ(meta.frequency, key == 1 ? 1u : 0u);
  });
  EXPECT_EQ(visited, 2);
}

// Concurrent pushes (and pulls) from several threads give the same table as
// applying the same pushes serially: SGD updates commute, so only float
// rounding of the additions may differ.
TEST(EmbeddingTableTest, ConcurrentPushesMatchSerialRun) {
  auto opt = MakeOpt(OptimizerType::kSgd);
  const int dim = 17, threads = 4, pushes = 200, batch = 500;
  std::vector<std::vector<uint64_t>> keys(threads * pushes);
  std::vector<std::vector<float>> grads(threads * pushes);
  std::mt19937_64 rng(3);
  for (size_t p = 0; p < keys.size(); ++p) {
    // Distinct keys within a push; overlap across pushes and threads.
    std::vector<uint64_t> k;
    while (k.size() < static_cast<size_t>(batch)) {
      const uint64_t key = rng() % 20000;
      if (std::find(k.begin(), k.end(), key) == k.end()) k.push_back(key);
    }
    keys[p] = k;
    grads[p].resize(batch * dim);
    for (float& g : grads[p]) g = static_cast<float>(static_cast<int>(rng() % 33) - 16) / 64.0f;
  }
  EmbeddingTable serial(Opts(dim), opt.get()), concurrent(Opts(dim), opt.get());
  for (size_t p = 0; p < keys.size(); ++p) serial.Push(keys[p].data(), batch, grads[p].data(), 1);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<float> scratch(batch * dim);
      for (int p = t; p < threads * pushes; p += threads) {
        concurrent.Push(keys[p].data(), batch, grads[p].data(), 1);
        concurrent.Pull(keys[p].data(), batch, scratch.data());  // readers interleave
      }
    });
  }
  for (auto& th : ts) th.join();
  ASSERT_EQ(serial.size(), concurrent.size());
  std::vector<uint64_t> all;
  serial.ForEachRow([&](uint64_t k, const float*, const float*, RowMeta) { all.push_back(k); });
  std::vector<float> a(all.size() * dim), b(all.size() * dim);
  serial.Pull(all.data(), all.size(), a.data());
  concurrent.Pull(all.data(), all.size(), b.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
}

TEST(EmbeddingTableTest, MemoryPerKeyIsCloseToPayload) {
  auto opt = MakeOpt(OptimizerType::kAdam);
  EmbeddingTable t(Opts(17), opt.get());
  const size_t n = 200000;
  std::vector<uint64_t> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = Mix64(i + 1);
  std::vector<float> out(n * 17);
  t.Pull(keys.data(), n, out.data());
  const double per_key = static_cast<double>(t.MemoryBytes()) / n;
  const double payload = (17 + 2 * 17) * 4.0;  // values + Adam m, v
  // Overhead: the key index (12 bytes a slot at load >= 3/8, plus up to half
  // again while a stripe's index is doubling: its old slots stay until their
  // entries have moved), and each row's key and meta (16 bytes), which let a
  // snapshot copy rows in short chunks. 200,000 keys leave most of the 256
  // stripes mid-doubling.
  EXPECT_LT(per_key, payload + 16 + 32 + 16) << per_key << " bytes/key";
  EXPECT_GE(per_key, payload);
}

TEST(EmbeddingTableTest, UpsertCreatesAndOverwritesRowsSlotsAndMeta) {
  auto opt = MakeOpt(OptimizerType::kAdam);
  EmbeddingTable t(Opts(2), opt.get());
  const float values[2] = {1.5f, -2.5f};
  const float slots[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  t.Upsert(77, values, slots, RowMeta{3, 9});
  // An existing row (created by a pull, then pushed) is overwritten whole.
  const uint64_t other = 78;
  std::vector<float> scratch(2);
  t.Pull(&other, 1, scratch.data());
  const float g[2] = {1.0f, 1.0f};
  t.Push(&other, 1, g, 5);
  const float values2[2] = {-7.0f, 8.0f};
  const float slots2[4] = {4.0f, 3.0f, 2.0f, 1.0f};
  t.Upsert(other, values2, slots2, RowMeta{11, 12});
  EXPECT_EQ(t.size(), 2u);
  int visited = 0;
  t.ForEachRow([&](uint64_t k, const float* v, const float* s, RowMeta m) {
    ++visited;
    ASSERT_TRUE(k == 77u || k == other) << k;
    const float* want_v = k == 77u ? values : values2;
    const float* want_s = k == 77u ? slots : slots2;
    for (int j = 0; j < 2; ++j) EXPECT_EQ(v[j], want_v[j]) << k;
    for (int j = 0; j < 4; ++j) EXPECT_EQ(s[j], want_s[j]) << k;
    EXPECT_EQ(m.frequency, k == 77u ? 3u : 11u);
    EXPECT_EQ(m.last_step, k == 77u ? 9u : 12u);
  });
  EXPECT_EQ(visited, 2);
  // Pull sees what Upsert wrote.
  const uint64_t k77 = 77;
  t.Pull(&k77, 1, scratch.data());
  EXPECT_EQ(scratch, std::vector<float>(values, values + 2));
}

}  // namespace
}  // namespace deepfm::ps

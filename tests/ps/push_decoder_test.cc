// A push decoded and checked on its own: a good request decodes exactly
// (f32 and bf16), and each input one step from good is refused naming what
// is wrong.
#include "ps/push_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/bytes.h"
#include "common/wire_values.h"
#include "tests/support/ps_fixtures.h"

namespace deepfm::ps {
namespace {

class PushDecoderTest : public ::testing::Test {
 protected:
  PushDecoderTest() : opt_(testing_util::SgdOptimizer(0.1f)), dense_(opt_.get()) {
    TableOptions o;
    o.name = "emb";
    o.dim = 3;
    table_ = std::make_unique<EmbeddingTable>(o, opt_.get());
    uint32_t id = 0;
    bool created = false;
    EXPECT_TRUE(dense_.Register("w", {2}, 0, 2, {0.f, 0.f}, &id, &created, {}).ok());
  }
  PushDecoder Decoder(uint32_t trainers = 2, Status owned = Status::Ok()) {
    return PushDecoder([this](uint32_t id) { return id == 0 ? table_.get() : nullptr; }, &dense_,
                       trainers,
                       [owned](const std::vector<uint64_t>&, const std::string&) { return owned; });
  }
  // Two keys of table 0 (3 floats each) and the 2-element variable.
  PushRequest Good(DType dtype = F32) {
    PushRequest r;
    r.set_dtype(dtype);
    r.set_global_step(5);
    r.set_task_index(1);
    auto* sg = r.add_sparse();
    const uint64_t keys[2] = {11, 12};
    AssignBytes(keys, 2, sg->mutable_keys());
    const float g[6] = {1, 2, 3, 4, 5, 6}, d[2] = {0.5f, -0.5f};
    Set(g, 6, dtype, sg->mutable_grads());
    Set(d, 2, dtype, r.add_dense()->mutable_grads());
    return r;
  }
  static void Set(const float* v, size_t n, DType dtype, std::string* out) {
    out->resize(n * WireElemSize(dtype == BF16));
    EncodeWireValues(v, n, dtype == BF16, out->data());
  }
  Status Refusal(const PushRequest& r) {
    DecodedPush d;
    return Decoder().Decode(r, &d);
  }

  std::unique_ptr<Optimizer> opt_;
  std::unique_ptr<EmbeddingTable> table_;
  DenseStore dense_;
};

TEST_F(PushDecoderTest, AGoodPushDecodesExactly) {
  for (DType dtype : {F32, BF16}) {
    DecodedPush d;
    ASSERT_TRUE(Decoder().Decode(Good(dtype), &d).ok());
    ASSERT_EQ(d.sparse.size(), 1u);
    EXPECT_EQ(d.sparse[0].table, table_.get());
    EXPECT_EQ(d.sparse[0].keys, (std::vector<uint64_t>{11, 12}));
    EXPECT_EQ(d.sparse[0].grads, (std::vector<float>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(d.dense, (std::vector<std::vector<float>>{{0.5f, -0.5f}}));
    EXPECT_EQ(d.keys, 2u);
  }
}

// The shard decodes every push of a handler thread into one DecodedPush:
// what a smaller push leaves there is its own, nothing of the one before.
TEST_F(PushDecoderTest, DecodingAgainIntoOneBufferKeepsNothingOfTheLastPush) {
  DecodedPush d;
  PushRequest big = Good();
  big.add_sparse()->CopyFrom(big.sparse(0));
  ASSERT_TRUE(Decoder().Decode(big, &d).ok());
  ASSERT_EQ(d.keys, 4u);
  PushRequest small;
  small.set_dtype(F32);
  small.set_global_step(6);
  auto* sg = small.add_sparse();
  const uint64_t key = 13;
  AssignBytes(&key, 1, sg->mutable_keys());
  const float g[3] = {7, 8, 9};
  Set(g, 3, F32, sg->mutable_grads());
  ASSERT_TRUE(Decoder().Decode(small, &d).ok());
  ASSERT_EQ(d.sparse.size(), 1u);
  EXPECT_EQ(d.sparse[0].keys, (std::vector<uint64_t>{13}));
  EXPECT_EQ(d.sparse[0].grads, (std::vector<float>{7, 8, 9}));
  EXPECT_TRUE(d.dense.empty());
  EXPECT_EQ(d.keys, 1u);
}

TEST_F(PushDecoderTest, EachInputOneStepFromGoodIsRefused) {
  auto expect = [&](const PushRequest& r, const std::string& says) {
    const Status s = Refusal(r);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << says;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message();
  };
  PushRequest r = Good();
  r.mutable_sparse(0)->mutable_keys()->pop_back();  // 15 bytes
  expect(r, "keys has 15 bytes");
  r = Good();
  r.mutable_sparse(0)->mutable_grads()->resize(5 * 4);  // one value short
  expect(r, "need 6 gradient values, got 5");
  r = Good();
  r.mutable_sparse(0)->mutable_grads()->resize(6 * 4 - 1);  // one byte short
  expect(r, "got 5 (and a partial value)");
  r = Good();
  const float nan[1] = {NAN};
  std::memcpy(r.mutable_sparse(0)->mutable_grads()->data() + 5 * 4, nan, 4);  // the last one
  expect(r, "push: table 'emb': gradient 5 is not finite");
  r = Good();
  r.mutable_sparse(0)->set_table_id(1);
  expect(r, "unknown table id 1");
  r = Good();
  r.mutable_dense(0)->mutable_grads()->resize(4);
  expect(r, "dense variable 'w' has 2 elements, got 4 bytes");
  r = Good();
  std::memcpy(r.mutable_dense(0)->mutable_grads()->data() + 4, nan, 4);
  expect(r, "dense variable 'w': gradient 1 is not finite");
  r = Good();
  r.mutable_dense(0)->set_dense_id(1);
  expect(r, "unknown dense variable id 1");
  r = Good();
  r.set_task_index(2);  // trainers 0 and 1
  expect(r, "trainer 2 is not in this job of 2 trainers");
  r = Good();
  r.set_global_step(-1);
  expect(r, "global_step -1 is negative");
  r = Good();
  r.set_increment_global_step(-1);
  expect(r, "negative step increment");
  r = Good();
  r.set_dtype(static_cast<DType>(BF16 + 1));
  expect(r, "unknown dtype");
  // The ownership check's own refusal comes back as it is.
  DecodedPush d;
  const Status s = Decoder(2, FailedPrecondition("key 11 is shard 1's")).Decode(Good(), &d);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(), "key 11 is shard 1's");
}

}  // namespace
}  // namespace deepfm::ps

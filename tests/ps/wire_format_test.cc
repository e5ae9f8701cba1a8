// The wire format of the two hot RPCs, pinned byte for byte: ps.proto's field
// numbers and types, little-endian keys, and the value encodings together.
// A worker and a server of different builds talk through exactly these bytes,
// so a change here must be deliberate (and is a protocol version change).
// The expected bytes are protobuf's encoding worked out by hand:
//   tag = field_number << 3 | wire_type (0 varint, 2 length-delimited).
#include <gtest/gtest.h>

#include <string>

#include "common/bytes.h"
#include "common/wire_values.h"
#include "proto/ps.pb.h"
#include "tests/support/hex.h"

namespace deepfm::ps {
namespace {

using testing_util::Hex;

constexpr uint64_t kKey = 0x0102030405060708ULL;

TEST(WireFormatTest, PushRequestBytes) {
  PushRequest req;
  auto* sg = req.add_sparse();
  sg->set_table_id(3);
  AssignBytes(&kKey, 1, sg->mutable_keys());
  const float g[2] = {1.0f, -2.5f};
  sg->mutable_grads()->resize(4);
  EncodeWireValues(g, 2, /*bf16=*/true, sg->mutable_grads()->data());
  auto* dg = req.add_dense();
  dg->set_dense_id(1);
  const float one = 1.0f;
  AssignBytes(&one, 1, dg->mutable_grads());
  req.set_dtype(BF16);
  req.set_global_step(300);
  req.set_increment_global_step(1);
  std::string bytes;
  ASSERT_TRUE(req.SerializeToString(&bytes));
  EXPECT_EQ(Hex(bytes),
            "0a12"                  // field 1 sparse, 18 bytes:
            "0803"                  //   table_id 3
            "12080807060504030201"  //   keys: 8 bytes, the key little-endian
            "1a04803f20c0"          //   grads: bf16 1.0 = 0x3f80, -2.5 = 0xc020
            "1208"                  // field 2 dense, 8 bytes:
            "0801"                  //   dense_id 1
            "12040000803f"          //   grads: f32 1.0
            "1801"                  // field 3 dtype BF16 = 1
            "20ac02"                // field 4 global_step 300 (varint 0xac 0x02)
            "2801");                // field 5 increment_global_step 1
}

TEST(WireFormatTest, PullRequestAndResponseBytes) {
  PullRequest req;
  AssignBytes(&kKey, 1, req.add_sparse()->mutable_keys());  // table_id 0: not written
  req.add_dense_ids(2);
  req.add_dense_ids(5);
  req.set_read_only(true);
  std::string bytes;
  ASSERT_TRUE(req.SerializeToString(&bytes));
  EXPECT_EQ(Hex(bytes),
            "0a0a"                  // field 1 sparse, 10 bytes:
            "12080807060504030201"  //   keys
            "12020205"              // field 2 dense_ids, packed: 2, 5
            "2001");                // field 4 read_only (dtype F32 = 0: not written)

  PullResponse resp;
  auto* rows = resp.add_sparse();
  rows->set_table_id(1);
  const float v[1] = {-0.5f};
  AssignBytes(v, 1, rows->mutable_values());
  resp.set_global_step(7);
  ASSERT_TRUE(resp.SerializeToString(&bytes));
  EXPECT_EQ(Hex(bytes),
            "0a08"          // field 1 sparse, 8 bytes:
            "0801"          //   table_id 1
            "1204000000bf"  //   values: f32 -0.5 = 0xbf000000
            "1807");        // field 3 global_step 7
}

}  // namespace
}  // namespace deepfm::ps

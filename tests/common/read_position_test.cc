// A position survives each of its forms field for field: every field holds a
// different value, so a converter that drops or swaps one fails.
#include "common/read_position.h"

#include <gtest/gtest.h>

#include <sstream>

#include "proto/ps.pb.h"

namespace deepfm {
namespace {

const ReadPosition kDistinct{-3, 7, (uint64_t{1} << 40) + 5, 11, 13, 17};

void ExpectSame(const ReadPosition& a, const ReadPosition& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.file_index, b.file_index);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.line_number, b.line_number);
  EXPECT_EQ(a.line_index, b.line_index);
  EXPECT_EQ(a.epoch_rows, b.epoch_rows);
}

TEST(ReadPositionTest, ThroughTheProtoAndBack) {
  ps::DataPosition m;
  ToProto(kDistinct, &m);
  EXPECT_EQ(m.offset(), kDistinct.offset);
  EXPECT_EQ(m.line_index(), 13);
  ExpectSame(FromProto(m), kDistinct);
}

TEST(ReadPositionTest, ThroughTheManifestTextAndBack) {
  std::stringstream text;
  text << kDistinct;
  EXPECT_EQ(text.str(), "-3 7 1099511627781 11 13 17");
  ReadPosition back;
  ASSERT_TRUE(static_cast<bool>(text >> back));
  ExpectSame(back, kDistinct);
}

}  // namespace
}  // namespace deepfm

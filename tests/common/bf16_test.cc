#include "common/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace deepfm {
namespace {

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  // Halfway between 0x3f80 and 0x3f81: ties go to even (0x3f80).
  EXPECT_EQ(FloatToBf16(FromBits(0x3f808000u)), 0x3f80);
  // Halfway between 0x3f81 and 0x3f82: ties go to even (0x3f82).
  EXPECT_EQ(FloatToBf16(FromBits(0x3f818000u)), 0x3f82);
  // Just above halfway rounds up.
  EXPECT_EQ(FloatToBf16(FromBits(0x3f808001u)), 0x3f81);
  // Just below halfway rounds down.
  EXPECT_EQ(FloatToBf16(FromBits(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
  // The largest finite float rounds to +Inf, as IEEE round-to-nearest does.
  EXPECT_EQ(FloatToBf16(FromBits(0x7f7fffffu)), 0x7f80);
}

TEST(Bf16Test, KeepsInfAndNan) {
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(FloatToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // A NaN whose payload lives only in the low bits must not become Inf.
  const uint16_t h = FloatToBf16(FromBits(0x7f800001u));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(h)));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  EXPECT_EQ(Bf16ToFloat(0x7f80), std::numeric_limits<float>::infinity());
}

TEST(Bf16Test, ArrayVersionsMatchScalar) {
  std::vector<float> in;
  for (uint32_t u = 0; u < 0xffffffffu - 65521u * 7; u += 65521u * 7) in.push_back(FromBits(u));
  std::vector<uint16_t> h(in.size());
  std::vector<float> back(in.size()), rounded(in);
  FloatToBf16(in.data(), h.data(), in.size());
  Bf16ToFloat(h.data(), back.data(), in.size());
  RoundToBf16(rounded.data(), rounded.size());
  for (size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(h[i], FloatToBf16(in[i])) << i;
    uint32_t a, b;
    std::memcpy(&a, &back[i], 4);
    std::memcpy(&b, &rounded[i], 4);
    ASSERT_EQ(a, b) << i;
  }
}

TEST(Bf16Test, RelativeErrorWithinHalfUlp) {
  for (float x : {0.1f, 3.14159f, -123.456f, 1e-20f, 6.5e4f}) {
    const float y = Bf16ToFloat(FloatToBf16(x));
    EXPECT_LE(std::fabs(y - x), std::fabs(x) * (1.0f / 256.0f)) << x;
  }
}

}  // namespace
}  // namespace deepfm

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

// Every halfway case of the format, expected values worked out by hand:
// the kept half is the high 16 bits; a dropped half of exactly 0x8000 is a
// tie and goes to the even neighbour, whatever the sign (ties away from
// zero would give the odd one for the first, third, fifth and sixth cases).
struct Halfway {
  uint32_t in;
  uint16_t out;
};
constexpr Halfway kHalfway[] = {
    {0x3f808000u, 0x3f80},  // 1.0 + half an ulp: tie, 0x3f80 is even, stays
    {0x3f818000u, 0x3f82},  // tie above an odd kept half: up to even
    {0xbf808000u, 0xbf80},  // negative tie, even below: stays (magnitude not rounded up)
    {0xbf818000u, 0xbf82},  // negative tie above odd: to even
    {0x00008000u, 0x0000},  // subnormal tie at zero
    {0x80008000u, 0x8000},  // negative subnormal tie at -0
    {0x00018000u, 0x0002},  // subnormal tie above odd
    {0x7f7f8000u, 0x7f80},  // largest odd finite half: a tie rounds to +Inf
    {0x3f80ffffu, 0x3f81},  // just below the next: rounds up
    {0x3f807fffu, 0x3f80},  // just below half: rounds down
};

TEST(Bf16Test, HalfwayCasesGoToEvenOnEveryPath) {
  std::vector<float> in;
  for (const Halfway& h : kHalfway) in.push_back(FromBits(h.in));
  std::vector<uint16_t> array(in.size());
  FloatToBf16(in.data(), array.data(), in.size());
  std::vector<float> rounded = in;
  RoundToBf16(rounded.data(), rounded.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const Halfway& h = kHalfway[i];
    EXPECT_EQ(FloatToBf16(in[i]), h.out) << std::hex << "scalar 0x" << h.in;
    EXPECT_EQ(array[i], h.out) << std::hex << "array 0x" << h.in;
    uint32_t r;
    std::memcpy(&r, &rounded[i], 4);
    EXPECT_EQ(r, static_cast<uint32_t>(h.out) << 16) << std::hex << "RoundToBf16 0x" << h.in;
  }
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

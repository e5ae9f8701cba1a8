// The bytes of values on the wire, pinned: little-endian IEEE float32, or the
// high half of each float32 rounded to nearest even (bfloat16), 2 bytes
// little-endian. Both ends of every link encode and decode through these two
// functions, so a change here is a wire format change.
#include "common/wire_values.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/hex.h"

namespace deepfm {
namespace {

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

using testing_util::Hex;

std::string Encode(const std::vector<float>& v, bool bf16) {
  std::string out(v.size() * WireElemSize(bf16), '\0');
  EncodeWireValues(v.data(), v.size(), bf16, out.data());
  return out;
}

// 1.0, -2.5, 0.1, a positive and a negative halfway case, and -0.
const std::vector<float> kValues = {1.0f, -2.5f, 0.1f, FromBits(0x3f818000u), FromBits(0xbf808000u),
                                    -0.0f};

TEST(WireValuesTest, Float32BytesAreLittleEndianIeee) {
  EXPECT_EQ(WireElemSize(false), 4u);
  EXPECT_EQ(Hex(Encode(kValues, false)),
            "0000803f"    // 1.0 = 0x3f800000
            "000020c0"    // -2.5 = 0xc0200000
            "cdcccc3d"    // 0.1 = 0x3dcccccd
            "0080813f"    // 0x3f818000
            "008080bf"    // 0xbf808000
            "00000080");  // -0 = 0x80000000
}

TEST(WireValuesTest, Bf16BytesAreRoundedHighHalves) {
  EXPECT_EQ(WireElemSize(true), 2u);
  EXPECT_EQ(Hex(Encode(kValues, true)),
            "803f"    // 1.0
            "20c0"    // -2.5
            "cd3d"    // 0.1 = 0x3dcccccd: dropped 0xcccd > 0x8000, rounds up to 0x3dcd
            "823f"    // tie above odd 0x3f81: to even 0x3f82
            "80bf"    // negative tie above even 0xbf80: stays
            "0080");  // -0
}

TEST(WireValuesTest, DecodeInvertsEncodeAndReadsUnaligned) {
  for (bool bf16 : {false, true}) {
    const std::string bytes = Encode(kValues, bf16);
    // Decode from an odd address: protobuf bytes carry no alignment.
    std::string shifted = "x" + bytes;
    std::vector<float> back(kValues.size());
    DecodeWireValues(shifted.data() + 1, back.size(), bf16, back.data());
    const std::vector<uint32_t> want_bf16 = {0x3f800000u, 0xc0200000u, 0x3dcd0000u,
                                             0x3f820000u, 0xbf800000u, 0x80000000u};
    for (size_t i = 0; i < back.size(); ++i) {
      uint32_t got, want;
      std::memcpy(&got, &back[i], 4);
      std::memcpy(&want, &kValues[i], 4);
      EXPECT_EQ(got, bf16 ? want_bf16[i] : want) << (bf16 ? "bf16 " : "f32 ") << i;
    }
  }
}

}  // namespace
}  // namespace deepfm

// bfloat16 <-> float32 conversion: round-to-nearest-even, NaN stays NaN (made
// quiet), Inf stays Inf. Array versions are written so the compiler vectorises
// them at the baseline ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace deepfm {

inline uint16_t FloatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep sign, force a quiet mantissa bit
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  }
  // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit.
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float Bf16ToFloat(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void FloatToBf16(const float* in, uint16_t* out, size_t n);
void Bf16ToFloat(const uint16_t* in, float* out, size_t n);
// Rounds every value through bf16 and back (what a bf16 store-then-load does).
void RoundToBf16(float* inout, size_t n);

}  // namespace deepfm

#include "common/wire_values.h"

#include <cstring>

#include "common/bf16.h"

namespace deepfm {

void EncodeWireValues(const float* values, size_t n, bool bf16, char* out) {
  if (bf16) {
    FloatToBf16(values, reinterpret_cast<uint16_t*>(out), n);
  } else {
    std::memcpy(out, values, n * sizeof(float));
  }
}

void DecodeWireValues(const char* in, size_t n, bool bf16, float* out) {
  if (bf16) {
    Bf16ToFloat(reinterpret_cast<const uint16_t*>(in), out, n);
  } else {
    std::memcpy(out, in, n * sizeof(float));
  }
}

}  // namespace deepfm

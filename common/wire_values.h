// Float arrays as they travel in `bytes` fields: little-endian float32, or
// bfloat16 (round to nearest even) when `bf16`. Shared by the shards and the
// workers so both ends encode and decode exactly alike.
#pragma once

#include <cstddef>

namespace deepfm {

inline size_t WireElemSize(bool bf16) { return bf16 ? 2 : 4; }

// Writes n values to out[n * WireElemSize(bf16)].
void EncodeWireValues(const float* values, size_t n, bool bf16, char* out);
// Reads n values from in[n * WireElemSize(bf16)] (no alignment needed).
void DecodeWireValues(const char* in, size_t n, bool bf16, float* out);

}  // namespace deepfm

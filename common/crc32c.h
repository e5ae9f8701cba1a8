// CRC-32C (Castagnoli), the checksum of every checkpoint file. SSE4.2's
// crc32 instruction where the CPU has it (chosen at run time), else
// software slicing-by-8 (about 1 GB/s): a save or a restore checksums every
// byte it moves.
#pragma once

#include <cstddef>
#include <cstdint>

namespace deepfm {

// Extends `crc` (0 for a fresh checksum) over data[0..n).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }

// The software path, whatever the CPU; for tests that compare the two.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);
// Whether Crc32cExtend uses the CPU's instruction.
bool Crc32cHardware();

}  // namespace deepfm

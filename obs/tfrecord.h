// TFRecord framing, as TensorFlow's record writer lays out every record of
// an event file: length (uint64 little-endian), masked CRC-32C of those 8
// bytes, the data, masked CRC-32C of the data. The mask keeps a CRC of data
// that itself holds CRCs from being trivially related to it.
#pragma once

#include <cstdint>
#include <string>

namespace deepfm::obs {

// TensorFlow's mask: rotate right by 15 bits, add 0xa282ead8.
uint32_t MaskedCrc32c(const void* data, size_t n);

// Appends one framed record holding `data` to *out.
void AppendRecord(const std::string& data, std::string* out);

// Reads the record at *offset of `bytes`, checking both CRCs; advances
// *offset past it. False (and *offset unchanged) at the end or on a torn or
// corrupt record.
bool ReadRecord(const std::string& bytes, size_t* offset, std::string* data);

}  // namespace deepfm::obs

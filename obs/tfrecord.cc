#include "obs/tfrecord.h"

#include <cstring>

#include "common/crc32c.h"

namespace deepfm::obs {
namespace {

void PutLE(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

uint32_t MaskedCrc32c(const void* data, size_t n) {
  const uint32_t crc = Crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void AppendRecord(const std::string& data, std::string* out) {
  std::string header;
  PutLE(data.size(), 8, &header);
  out->append(header);
  PutLE(MaskedCrc32c(header.data(), header.size()), 4, out);
  out->append(data);
  PutLE(MaskedCrc32c(data.data(), data.size()), 4, out);
}

bool ReadRecord(const std::string& bytes, size_t* offset, std::string* data) {
  const size_t at = *offset;
  if (bytes.size() < at + 12) return false;
  const uint64_t len = GetLE(bytes.data() + at, 8);
  if (GetLE(bytes.data() + at + 8, 4) != MaskedCrc32c(bytes.data() + at, 8)) return false;
  if (len > bytes.size() - at - 12 || bytes.size() - at - 12 - len < 4) return false;
  const char* payload = bytes.data() + at + 12;
  if (GetLE(payload + len, 4) != MaskedCrc32c(payload, len)) return false;
  data->assign(payload, len);
  *offset = at + 12 + len + 4;
  return true;
}

}  // namespace deepfm::obs

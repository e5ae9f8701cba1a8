// Views and copies between typed arrays and the `bytes` fields of protobuf
// messages. The wire is little-endian; so is every host this builds for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format is little-endian");

namespace deepfm {

template <typename T>
size_t CountOf(const std::string& bytes) {
  return bytes.size() / sizeof(T);
}

template <typename T>
bool IsWholeArrayOf(const std::string& bytes) {
  return bytes.size() % sizeof(T) == 0;
}

// protobuf `bytes` storage is not guaranteed aligned for T; callers that read
// element-wise use LoadAt, bulk readers copy with CopyOut.
template <typename T>
T LoadAt(const std::string& bytes, size_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

template <typename T>
void CopyOut(const std::string& bytes, std::vector<T>* out) {
  out->resize(bytes.size() / sizeof(T));
  if (!out->empty()) std::memcpy(out->data(), bytes.data(), out->size() * sizeof(T));
}

template <typename T>
void AssignBytes(const T* data, size_t n, std::string* bytes) {
  bytes->assign(reinterpret_cast<const char*>(data), n * sizeof(T));
}

}  // namespace deepfm

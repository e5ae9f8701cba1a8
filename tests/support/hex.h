// Bytes as lowercase hex, for tests that pin exact encodings.
#pragma once

#include <string>

namespace deepfm::testing_util {

inline std::string Hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

}  // namespace deepfm::testing_util

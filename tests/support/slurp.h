// A whole file as a string, for tests (empty when it cannot be read).
#pragma once

#include <string>

#include "common/checkpoint_manifest.h"

namespace deepfm::testing_util {

inline std::string Slurp(const std::string& path) {
  std::string bytes;
  if (!ReadFile(path, &bytes).ok()) bytes.clear();
  return bytes;
}

}  // namespace deepfm::testing_util

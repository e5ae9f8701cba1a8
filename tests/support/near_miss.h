// Wrong secrets that are almost right, for tests of a check: a check tested
// only with inputs wrong everywhere lets a comparison that skips a byte, or
// compares only a prefix, pass.
#pragma once

#include <string>
#include <vector>

namespace deepfm::testing_util {

// `right` with one byte changed at the first, a middle and the last
// position, `right` less its last byte, `right` with one byte more, and
// the empty string. `right` must not be empty.
inline std::vector<std::string> NearMisses(const std::string& right) {
  std::vector<std::string> out;
  for (size_t at : {size_t{0}, right.size() / 2, right.size() - 1}) {
    std::string s = right;
    s[at] = static_cast<char>(s[at] == 'a' ? 'b' : 'a');
    out.push_back(s);
  }
  out.push_back(right.substr(0, right.size() - 1));
  out.push_back(right + right.back());
  out.push_back("");
  return out;
}

}  // namespace deepfm::testing_util

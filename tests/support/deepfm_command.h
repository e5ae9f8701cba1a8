// Running the real `deepfm` program from an end-to-end test: output
// captured, bounded in time, a timeout reported as a failure. The test
// target defines DEEPFM_BIN (the program's path).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/support/process.h"

namespace deepfm::testing_util {

// Runs `deepfm <args>` for at most `timeout_s` seconds.
inline ShellResult Deepfm(const std::string& args, double timeout_s = 180) {
  ShellResult r = RunShell(std::string(DEEPFM_BIN) + " " + args, timeout_s);
  EXPECT_FALSE(r.timed_out) << "deepfm " << args << " ran past " << timeout_s
                            << " s; it printed:\n" << r.output;
  return r;
}

}  // namespace deepfm::testing_util

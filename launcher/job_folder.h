// The folder of a new job when the user names none: created exclusively, so
// two jobs started in the same second (same timestamp) never share one.
#pragma once

#include <string>

#include "common/env.h"
#include "common/status.h"

namespace deepfm::launcher {

// Creates parent/base, or parent/base-2, base-3, ... when that exists (each
// with a mkdir that fails if the folder exists, so concurrent callers get
// different folders), and sets *folder to it. `parent` is created if missing.
// An error names the folder that could not be created.
Status CreateFreshJobFolder(const std::string& parent, const std::string& base, std::string* folder,
                            Env* env = Env::Default());

}  // namespace deepfm::launcher

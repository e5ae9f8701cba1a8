#include "launcher/job_folder.h"

#include <filesystem>

namespace deepfm::launcher {

Status CreateFreshJobFolder(const std::string& parent, const std::string& base, std::string* folder,
                            Env* env) {
  Status s = env->CreateDirs(parent);
  if (!s.ok()) return s;
  // Far more than jobs can start in one second; a bound keeps a filesystem
  // that answers "exists" to everything from looping forever.
  constexpr int kMaxTries = 10000;
  for (int i = 1; i <= kMaxTries; ++i) {
    const std::string name = i == 1 ? base : base + "-" + std::to_string(i);
    const std::string path = (std::filesystem::path(parent) / name).string();
    s = env->CreateDir(path);
    if (s.ok()) {
      *folder = path;
      return Status::Ok();
    }
    if (s.code() != Code::kAlreadyExists) return s;
  }
  return Status(Code::kAlreadyExists, "every job folder name from " + base + " to " + base + "-" +
                                          std::to_string(kMaxTries) + " is taken under " + parent +
                                          "; clean up --output_dir or give --checkpoint");
}

}  // namespace deepfm::launcher

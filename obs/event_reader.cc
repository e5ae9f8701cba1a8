#include "obs/event_reader.h"

#include <algorithm>
#include <filesystem>

#include "common/checkpoint_manifest.h"
#include "obs/tfrecord.h"
#include "proto/tensorboard.pb.h"

namespace deepfm::obs {

Status ReadScalars(const std::string& dir, std::vector<Scalar>* out) {
  namespace fs = std::filesystem;
  out->clear();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::Ok();
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  Status first_error;
  for (const std::string& path : files) {
    std::string bytes;
    Status s = ReadFile(path, &bytes);
    if (!s.ok()) return s;
    size_t offset = 0;
    std::string record;
    while (offset < bytes.size()) {
      tb::Event event;
      if (!ReadRecord(bytes, &offset, &record) || !event.ParseFromString(record)) {
        if (first_error.ok()) {
          first_error = DataLoss(path + ": a damaged record at byte " + std::to_string(offset));
        }
        break;
      }
      if (!event.has_summary()) continue;
      for (const tb::SummaryValue& v : event.summary().value()) {
        out->push_back(Scalar{event.step(), event.wall_time(), v.tag(), v.simple_value()});
      }
    }
  }
  return first_error;
}

}  // namespace deepfm::obs

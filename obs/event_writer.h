// TensorBoard event files, as TensorFlow's summary writer writes them: a
// file events.out.tfevents.<seconds>.<host> in a run folder (train/ and
// eval/ of a job folder, as tf.estimator lays them out, so TensorBoard
// overlays the two), holding TFRecord-framed Event messages
// (proto/tensorboard.proto): first a file_version event, then scalar
// summaries. Each Add is written through to the file (a job that dies
// keeps every scalar it logged).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace deepfm::obs {

class EventWriter {
 public:
  // Creates `dir` if needed and a new event file in it.
  static Status Open(const std::string& dir, std::unique_ptr<EventWriter>* out);
  ~EventWriter();

  // One event at `step` holding every tag's scalar; wall_time 0: now.
  Status AddScalars(int64_t step, const std::map<std::string, double>& scalars,
                    double wall_time = 0);
  const std::string& path() const { return path_; }

 private:
  EventWriter() = default;
  Status Write(const std::string& event_bytes);
  std::string path_;
  int fd_ = -1;
};

}  // namespace deepfm::obs

// Reads back the scalars of TensorBoard event files (what EventWriter
// writes): every events.out.tfevents.* file of a run folder, in name order
// (their names start with the second they were opened, so older first).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm::obs {

struct Scalar {
  int64_t step = 0;
  double wall_time = 0;
  std::string tag;
  double value = 0;
};

// A missing folder reads as no scalars; a record whose CRC fails or that
// does not parse ends that file's reading with DataLoss naming the file (a
// torn last record of a job that died is reported, the scalars before it
// are kept in *out).
Status ReadScalars(const std::string& dir, std::vector<Scalar>* out);

}  // namespace deepfm::obs

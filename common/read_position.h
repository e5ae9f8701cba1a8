// Where a trainer's reader stands in the job's data, and its one form in
// each place it travels: the reader's batches, a push's proto
// (ps::DataPosition, the same fields), and a checkpoint manifest's
// `position` line. Every conversion lives here, so a field added to the
// position is added once.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>

namespace deepfm {

struct ReadPosition {
  int32_t epoch = 0;
  uint32_t file_index = 0;  // into the job's data files, in order
  uint64_t offset = 0;      // byte offset of the next line in that file
  int64_t line_number = 0;  // lines of that file before `offset` (for messages)
  int64_t line_index = 0;   // lines of the epoch before it: the sharding index
  int64_t epoch_rows = 0;   // this reader's good rows of the epoch before it
};

// A trainer's position at a checkpoint's step.
struct TrainerDataPosition {
  uint32_t task_index = 0;
  ReadPosition position;
};

// Templated on the message type so that common needs no generated code;
// used with ps::DataPosition.
template <typename Msg>
void ToProto(const ReadPosition& p, Msg* m) {
  m->set_epoch(p.epoch);
  m->set_file_index(p.file_index);
  m->set_offset(p.offset);
  m->set_line_number(p.line_number);
  m->set_line_index(p.line_index);
  m->set_epoch_rows(p.epoch_rows);
}

template <typename Msg>
ReadPosition FromProto(const Msg& m) {
  return ReadPosition{m.epoch(),       m.file_index(), m.offset(),
                      m.line_number(), m.line_index(), m.epoch_rows()};
}

// The manifest's text: the six fields in declaration order, space-separated.
inline std::ostream& operator<<(std::ostream& o, const ReadPosition& p) {
  return o << p.epoch << " " << p.file_index << " " << p.offset << " " << p.line_number << " "
           << p.line_index << " " << p.epoch_rows;
}
inline std::istream& operator>>(std::istream& in, ReadPosition& p) {
  return in >> p.epoch >> p.file_index >> p.offset >> p.line_number >> p.line_index >> p.epoch_rows;
}

}  // namespace deepfm

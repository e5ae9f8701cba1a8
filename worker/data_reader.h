// Training data reader: parses CSV or TSV lines by a feature spec
// (spec/feature_spec.h) into Batches on a background thread, ahead of the
// trainer.
//
// A line has the spec's columns, in order, separated by its separator (or,
// when the spec leaves it open, ',' or '\t' decided per file). With the
// spec's header, each file's first line must name the columns and is skipped.
// The label is 0 or 1. A numeric cell is an integer or decimal number
// (possibly negative), an empty one reads as its default; then its transform.
// A categorical token is the raw bytes of the cell (its default when empty)
// and becomes FeatureKey(seed, token), or nothing when it is empty and the
// column drops empties, or outside its vocabulary. A list cell is split on
// its separator, every token (an empty cell: one "" token) looked up the
// same way, the first max_length kept and the rest counted. A numeric list
// becomes the mean of its numbers. No whitespace trimming is done; a
// trailing '\r' (CRLF files) is dropped, the last line may lack its '\n', and
// empty lines are skipped without counting as bad.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "spec/feature_spec.h"
#include "worker/batch.h"

namespace deepfm {

struct ReaderOptions {
  enum Format { kAuto, kCsv, kTsv };

  std::vector<std::string> files;
  // What a line is; null: the criteo preset.
  FeatureSpecPtr spec;
  // kAuto follows the spec's separator, or when it has none decides per
  // file: ".csv" -> CSV, ".tsv" -> TSV, anything else
  // (Criteo ships "train.txt" as TSV) by which separator the first line uses.
  Format format = kAuto;
  int batch_size = 512;
  // Sharding between workers is BY LINE: lines are numbered from 0 across the
  // concatenation of `files` (in the given order, empty and bad lines
  // included, restarting every epoch), and this reader keeps the lines whose
  // number % num_parts == part_index. Parts are disjoint, together they are
  // complete, and they stay balanced within one line however the data is split
  // into files. Every reader still scans all bytes but parses only its lines.
  int part_index = 0;
  int num_parts = 1;
  // Epochs run back to back; batches span epoch boundaries, so only the very
  // last batch can be short.
  int num_epochs = 1;
  // Bad lines are logged, skipped and counted. The read fails when
  // bad / (good + bad) exceeds this after an epoch, or, as soon as more than
  // half of at least 1000 lines are bad (a wrong format), when this is < 0.5.
  double max_bad_fraction = 0.001;
  // Fail on the first bad line instead.
  bool strict = false;
  // A longer line (a binary file, or one whose lines end in a lone '\r') is
  // a bad line, reported as such and skipped to the next '\n'; the reader's
  // buffer never grows beyond about this.
  size_t max_line_bytes = 1 << 20;
  // Batches parsed ahead of the consumer.
  int queue_capacity = 8;
  // Good rows kept per epoch (after sharding); -1 keeps all.
  int64_t max_rows = -1;
  // Drop the short last batch instead of delivering it.
  bool drop_remainder = false;
  // An empty label cell reads as NaN instead of a bad line (scoring data).
  bool label_optional = false;
  // Where to begin: a Batch::end of an earlier reader over the same files
  // and sharding (a resumed job). The default is the very beginning.
  ReadPosition start;
};

// Rows per batch of the trainer's evaluation, and of `deepfm predict`, so
// that the two score alike bit for bit.
inline constexpr int kEvalBatchSize = 4096;

// What ParseLine found wrong with a line.
enum class LineError { kOk, kFieldCount, kBadLabel, kBadDense };

// The criteo preset, loaded once (the default of ReaderOptions::spec).
const FeatureSpecPtr& CriteoSpec();

// Parses one line (without its '\n'; a trailing '\r' is ignored) separated by
// `sep` into row `row` of `out` (shaped for `spec`, size > row, rows before
// `row` complete). On success returns kOk; list tokens cut by a cap are
// added to out->truncated_tokens. On failure returns the kind, leaves the
// row partly written (the next parse of that row overwrites it), and when
// `what` is not null describes the problem there, naming the column and
// quoting the offending value. Allocates nothing on success once the
// batch's buffers have grown.
// With `label_optional`, an empty label cell reads as NaN (a row to score,
// not to learn from: predict and serve).
LineError ParseLine(const FeatureSpec& spec, std::string_view line, char sep, Batch* out, int row,
                    std::string* what = nullptr, bool label_optional = false);

// Parses every non-empty line of `text` (the last may lack '\n') and appends
// the good rows to `out` (out->size grows; an empty batch is shaped for
// `spec` first). Returns the number of bad lines. The synchronous core the
// reader thread uses, exposed for tests and benchmarks.
int64_t ParseText(const FeatureSpec& spec, std::string_view text, char sep, Batch* out);

// The separator auto-detection would pick for a file named `path` whose first
// line is `first_line`.
ReaderOptions::Format DetectFormat(std::string_view path, std::string_view first_line);

// Reads the files on a background thread into a bounded queue of Batches.
// Not copyable. Next() is meant for one consumer thread; the counters and
// status() may be read from any thread.
class BatchReader {
 public:
  explicit BatchReader(ReaderOptions options);
  ~BatchReader();  // Stops the thread.
  BatchReader(const BatchReader&) = delete;
  BatchReader& operator=(const BatchReader&) = delete;

  // Checks the options and that every file can be opened (an error names the
  // path), detects formats, and starts the reader thread.
  Status Start();

  // Blocks for the next batch and moves it into *out (whose old buffers are
  // recycled, so a consumer reusing one Batch allocates nothing in steady
  // state). Returns false at the end of the data or once the read failed;
  // then status() tells which.
  bool Next(Batch* out);

  // Stops the reader thread early; Next() then returns false. Idempotent.
  void Stop();

  // OK while reading and after a clean end. An error names the first bad
  // line as path:line and says what to change.
  Status status() const;
  // Good rows parsed so far (all epochs, including a dropped remainder).
  int64_t rows() const { return rows_.load(std::memory_order_relaxed); }
  // List tokens cut by their column's max_length so far (all epochs).
  int64_t truncated_tokens() const { return truncated_.load(std::memory_order_relaxed); }
  // Bad lines skipped so far (all epochs).
  int64_t bad_lines() const { return bad_lines_.load(std::memory_order_relaxed); }
  // The size of the reader's line buffer now: a block, or one line of up to
  // max_line_bytes when that is larger.
  size_t buffer_bytes() const { return buffer_bytes_.load(std::memory_order_relaxed); }

  // Reads `options` to the end on a fresh reader, consuming batches on the
  // calling thread, and reports good rows per second of wall time.
  static Status MeasureRowsPerSecond(const ReaderOptions& options, double* rows_per_second,
                                     int64_t* rows = nullptr);

 private:
  enum class Flow { kContinue, kEndEpoch, kStop };

  void Run();
  // Reads file `file_index` from byte `offset`, where `line_number` lines
  // of it lie before.
  Status ReadFile(size_t file_index, uint64_t offset, int64_t line_number, Flow* flow);
  Flow HandleLine(size_t file_index, int64_t line_number, const char* begin, const char* end,
                  uint64_t next_offset);
  // Numbers the next line of the epoch (every line counts, for sharding);
  // true when it is this part's.
  bool OwnsNextLine();
  Flow HandleLongLine(size_t file_index, int64_t line_number);
  Flow BadLine(size_t file_index, int64_t line_number, const std::string& what);
  void RecordBadLine(size_t file_index, int64_t line_number, const std::string& what);
  bool PushCurrent();  // false when stopped
  void Finish(Status status);

  // Header files: checks that line 1 names the spec's columns.
  Status CheckHeader(size_t file_index, std::string_view line) const;

  const ReaderOptions options_;
  const FeatureSpecPtr spec_;
  std::vector<char> seps_;  // per file

  // Reader-thread state.
  std::vector<char> buffer_;
  Batch current_;
  int current_rows_ = 0;
  int32_t epoch_ = 0;
  int64_t line_index_ = 0;   // sharding index within the epoch
  int64_t epoch_rows_ = 0;   // good rows kept this epoch
  int64_t epoch_lines_ = 0;  // lines of this part examined this epoch
  int64_t epoch_bad_ = 0;
  std::string first_bad_;  // "path:line: what"
  Status pending_error_;   // set by HandleLine when it stops the read
  std::string scratch_;

  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Batch> queue_;  // guarded by mu_
  std::vector<Batch> free_;  // guarded by mu_
  bool done_ = false;        // guarded by mu_
  bool stop_ = false;        // guarded by mu_
  bool started_ = false;
  Status status_;  // guarded by mu_
  std::atomic<bool> stop_flag_{false};
  std::atomic<int64_t> rows_{0};
  std::atomic<int64_t> bad_lines_{0};
  std::atomic<int64_t> truncated_{0};
  std::atomic<size_t> buffer_bytes_{0};
};

}  // namespace deepfm

#include "worker/data_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "common/hash.h"
#include "common/timing.h"
#include "glog/logging.h"

namespace deepfm {
namespace {

constexpr size_t kBlockBytes = 4 << 20;
constexpr int kMaxLoggedBadLines = 10;
// "More than half bad" is only judged after this many lines, so a few bad
// lines at the head of a good file cannot abort the read.
constexpr int64_t kWrongFormatMinLines = 1000;

// log1p of small non-negative integers, which is what nearly every Criteo
// dense value is; std::log1p costs more than parsing the whole field.
class Log1pTable {
 public:
  static constexpr uint64_t kSize = 4096;
  Log1pTable() {
    for (uint64_t i = 0; i < kSize; ++i) values_[i] = static_cast<float>(std::log1p(double(i)));
  }
  float operator()(uint64_t v) const {
    return v < kSize ? values_[v] : static_cast<float>(std::log1p(double(v)));
  }

 private:
  float values_[kSize];
};
const Log1pTable kLog1p;

inline float TransformDense(double v) { return v > 0 ? static_cast<float>(std::log1p(v)) : 0.0f; }

// Parses a whole field as a finite number (integer or decimal, optional sign,
// optional exponent). No whitespace, no "inf"/"nan".
bool ParseNumber(const char* b, const char* e, double* out) {
  const char* p = b;
  bool neg = false;
  if (p != e && (*p == '-' || *p == '+')) {
    neg = *p == '-';
    ++p;
  }
  if (p == e || *p == '-' || *p == '+') return false;
  double v = 0;
  auto r = std::from_chars(p, e, v, std::chars_format::general);
  if (r.ec != std::errc() || r.ptr != e || !std::isfinite(v)) return false;
  *out = neg ? -v : v;
  return true;
}

// Parses a dense field and applies the transform; empty is 0.
inline bool ParseDense(const char* b, const char* e, float* x) {
  if (b == e) {
    *x = 0.0f;
    return true;
  }
  // Fast path: plain integers of up to 18 digits (cannot overflow uint64).
  const char* p = b;
  const bool neg = *p == '-';
  if (neg || *p == '+') ++p;
  if (p != e && e - p <= 18) {
    uint64_t v = 0;
    const char* q = p;
    for (; q != e; ++q) {
      const unsigned d = static_cast<unsigned>(*q) - '0';
      if (d > 9) break;
      v = v * 10 + d;
    }
    if (q == e) {
      *x = neg ? 0.0f : kLog1p(v);
      return true;
    }
  }
  double v;
  if (!ParseNumber(b, e, &v)) return false;
  *x = TransformDense(v);
  return true;
}

inline const char* FindSep(const char* p, const char* end, char sep) {
  while (p != end && *p != sep) ++p;
  return p;
}

std::string Quote(const char* b, const char* e) {
  constexpr size_t kMax = 40;
  const size_t n = static_cast<size_t>(e - b);
  std::string s = "'";
  s.append(b, std::min(n, kMax));
  if (n > kMax) s += "...";
  s += "'";
  return s;
}

const char* SepName(char sep) {
  if (sep == '\t') return "tabs";
  if (sep == ',') return "','";
  return "its separator";
}

LineError FieldCountError(const FeatureSpec& spec, const char* b, const char* e, char sep,
                          std::string* what) {
  if (what != nullptr) {
    const int64_t fields = 1 + std::count(b, e, sep);
    *what = "expected " + std::to_string(spec.num_columns()) + " columns (feature spec '" +
            spec.name() + "') separated by " + SepName(sep) + ", found " + std::to_string(fields);
  }
  return LineError::kFieldCount;
}

char SepOf(ReaderOptions::Format f) { return f == ReaderOptions::kTsv ? '\t' : ','; }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

inline bool InVocabulary(const std::vector<std::string>& words, std::string_view token) {
  for (const std::string& w : words) {
    if (w == token) return true;
  }
  return false;
}

// A numeric cell with its default and transform.
inline bool ParseNumeric(const FeatureSpec::ColumnInfo& c, const char* b, const char* e, float* x) {
  if (c.transform == spec::LOG1P) {
    if (b == e) {
      *x = TransformDense(c.numeric_default);
      return true;
    }
    return ParseDense(b, e, x);
  }
  double v = c.numeric_default;
  if (b != e && !ParseNumber(b, e, &v)) return false;
  *x = static_cast<float>(v);
  return true;
}

// The mean of a numeric list cell (its default when empty), transformed.
inline bool ParseNumericList(const FeatureSpec::ColumnInfo& c, const char* b, const char* e,
                             float* x) {
  if (b == e) {
    b = c.default_value.data();
    e = b + c.default_value.size();
  }
  double sum = 0;
  int64_t n = 0;
  const char sep = c.list_separator;
  for (const char* p = b;; ++n) {
    const char* q = FindSep(p, e, sep);
    double v;
    if (!ParseNumber(p, q, &v)) return false;
    sum += v;
    if (q == e) {
      ++n;
      break;
    }
    p = q + 1;
  }
  const double mean = sum / static_cast<double>(n);
  *x = c.transform == spec::LOG1P ? TransformDense(mean) : static_cast<float>(mean);
  return true;
}

}  // namespace

const FeatureSpecPtr& CriteoSpec() {
  static const FeatureSpecPtr spec = [] {
    FeatureSpecPtr s;
    const Status st = FeatureSpec::Load("criteo", &s);
    CHECK(st.ok()) << st.ToString();
    return s;
  }();
  return spec;
}

void Batch::Shape(const FeatureSpec& spec) {
  size = 0;
  num_numeric = spec.num_numeric();
  labels.clear();
  dense.clear();
  truncated_tokens = 0;
  tables.assign(spec.tables().size(), TableKeys());
  for (size_t t = 0; t < tables.size(); ++t) {
    tables[t].members = static_cast<int>(spec.tables()[t].columns.size());
    tables[t].fixed = spec.tables()[t].fixed_width;
    if (!tables[t].fixed) tables[t].splits.assign(1, 0);
  }
}

LineError ParseLine(const FeatureSpec& spec, std::string_view line, char sep, Batch* out, int row,
                    std::string* what, bool label_optional) {
  const char* const begin = line.data();
  const char* end = begin + line.size();
  if (end != begin && end[-1] == '\r') --end;
  for (TableKeys& t : out->tables) {
    if (!t.fixed) t.keys.resize(t.splits[static_cast<size_t>(row) * t.members]);
  }
  float* const numeric = out->dense.data() + static_cast<size_t>(row) * out->num_numeric;
  const std::vector<FeatureSpec::ColumnInfo>& columns = spec.columns();
  const int last = static_cast<int>(columns.size()) - 1;
  const char* p = begin;
  for (int ci = 0; ci <= last; ++ci) {
    const FeatureSpec::ColumnInfo& c = columns[ci];
    if (c.kind == FeatureSpec::Kind::kList && p != end && *p != sep) {
      // One pass splits the cell and hashes its tokens: lists are most of a
      // line's bytes (ELM's history columns).
      TableKeys& t = out->tables[c.table];
      const uint64_t basis = FeatureKeyBasis(c.key_seed);
      const char lsep = c.list_separator;
      const bool vocab = !c.vocabulary.empty();
      uint32_t n = 0;
      uint64_t h = basis;
      const char* a = p;
      const char* z = p;
      for (;; ++z) {
        const bool at_end = z == end;
        const char ch = at_end ? '\0' : *z;
        if (at_end || ch == sep || ch == lsep) {
          if (c.max_length != 0 && n >= c.max_length) {
            ++out->truncated_tokens;
          } else if (!vocab || InVocabulary(c.vocabulary, std::string_view(a, z - a))) {
            t.keys.push_back(BucketKey(c.key_seed, Mix64(h), c.hash_buckets));
          }
          ++n;
          if (at_end || ch == sep) break;
          a = z + 1;
          h = basis;
          continue;
        }
        h = (h ^ static_cast<unsigned char>(ch)) * kFnv64Prime;
      }
      t.splits[static_cast<size_t>(row) * t.members + c.member + 1] = static_cast<int32_t>(t.keys.size());
      if ((z == end) != (ci == last)) return FieldCountError(spec, begin, end, sep, what);
      p = z + 1;
      continue;
    }
    const char* q = FindSep(p, end, sep);
    if ((q == end) != (ci == last)) return FieldCountError(spec, begin, end, sep, what);
    switch (c.kind) {
      case FeatureSpec::Kind::kLabel: {
        float* label = &out->labels[row];
        if (q - p == 1 && (*p == '0' || *p == '1')) {
          *label = static_cast<float>(*p - '0');
        } else if (q == p && label_optional) {
          *label = std::numeric_limits<float>::quiet_NaN();
        } else {
          double v;
          if (!ParseNumber(p, q, &v) || (v != 0.0 && v != 1.0)) {
            if (what != nullptr) {
              *what = (c.name == "label" ? std::string("label") : "label " + c.name) + " is " +
                      Quote(p, q) + ", expected 0 or 1";
            }
            return LineError::kBadLabel;
          }
          *label = static_cast<float>(v);
        }
        break;
      }
      case FeatureSpec::Kind::kNumeric:
        if (!ParseNumeric(c, p, q, &numeric[c.numeric])) {
          if (what != nullptr) *what = "numeric column " + c.name + " is " + Quote(p, q) + ", not a number";
          return LineError::kBadDense;
        }
        break;
      case FeatureSpec::Kind::kNumericList:
        if (!ParseNumericList(c, p, q, &numeric[c.numeric])) {
          if (what != nullptr) {
            *what = "numeric list column " + c.name + " is " + Quote(p, q) +
                    ", not numbers separated by '" + std::string(1, c.list_separator) + "'";
          }
          return LineError::kBadDense;
        }
        break;
      case FeatureSpec::Kind::kCategorical: {
        TableKeys& t = out->tables[c.table];
        std::string_view token = p == q ? std::string_view(c.default_value) : std::string_view(p, q - p);
        if (t.fixed) {
          t.keys[static_cast<size_t>(row) * t.members + c.member] =
              BucketKey(c.key_seed, FeatureKey(c.key_seed, token), c.hash_buckets);
        } else {
          if (!(token.empty() && c.drop_empty) &&
              (c.vocabulary.empty() || InVocabulary(c.vocabulary, token))) {
            t.keys.push_back(BucketKey(c.key_seed, FeatureKey(c.key_seed, token), c.hash_buckets));
          }
          t.splits[static_cast<size_t>(row) * t.members + c.member + 1] = static_cast<int32_t>(t.keys.size());
        }
        break;
      }
      case FeatureSpec::Kind::kList: {
        // Only an empty cell comes here (the others above): its default's tokens.
        TableKeys& t = out->tables[c.table];
        const char* lb = p;
        const char* le = q;
        if (lb == le) {
          lb = c.default_value.data();
          le = lb + c.default_value.size();
        }
        uint32_t n = 0;
        for (const char* a = lb;;) {
          const char* z = FindSep(a, le, c.list_separator);
          if (c.max_length == 0 || n < c.max_length) {
            const std::string_view token(a, z - a);
            if (c.vocabulary.empty() || InVocabulary(c.vocabulary, token)) {
              t.keys.push_back(BucketKey(c.key_seed, FeatureKey(c.key_seed, token), c.hash_buckets));
            }
          } else {
            ++out->truncated_tokens;
          }
          ++n;
          if (z == le) break;
          a = z + 1;
        }
        t.splits[static_cast<size_t>(row) * t.members + c.member + 1] = static_cast<int32_t>(t.keys.size());
        break;
      }
      case FeatureSpec::Kind::kIgnored:
        break;
    }
    p = q + 1;
  }
  return LineError::kOk;
}

int64_t ParseText(const FeatureSpec& spec, std::string_view text, char sep, Batch* out) {
  if (out->size == 0) out->Shape(spec);
  int64_t bad = 0;
  int row = out->size;
  int capacity = row;
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    const char* line_end = nl != nullptr ? nl : end;
    const std::string_view line(p, line_end - p);
    p = line_end + 1;
    if (line.empty() || line == "\r") continue;
    if (row == capacity) {
      capacity = std::max(2 * capacity, 1024);
      out->Resize(capacity);
    }
    if (ParseLine(spec, line, sep, out, row) == LineError::kOk) {
      ++row;
    } else {
      ++bad;
    }
  }
  out->Resize(row);
  return bad;
}

ReaderOptions::Format DetectFormat(std::string_view path, std::string_view first_line) {
  if (EndsWith(path, ".csv")) return ReaderOptions::kCsv;
  if (EndsWith(path, ".tsv")) return ReaderOptions::kTsv;
  const auto tabs = std::count(first_line.begin(), first_line.end(), '\t');
  const auto commas = std::count(first_line.begin(), first_line.end(), ',');
  return tabs > commas ? ReaderOptions::kTsv : ReaderOptions::kCsv;
}

BatchReader::BatchReader(ReaderOptions options)
    : options_(std::move(options)), spec_(options_.spec ? options_.spec : CriteoSpec()) {}

BatchReader::~BatchReader() { Stop(); }

Status BatchReader::Start() {
  if (started_) return FailedPrecondition("BatchReader::Start called twice");
  const ReaderOptions& o = options_;
  if (o.files.empty()) return InvalidArgument("reader: no input files given");
  if (o.batch_size <= 0) {
    return InvalidArgument("reader: batch_size must be positive, got " +
                           std::to_string(o.batch_size));
  }
  if (o.num_parts <= 0 || o.part_index < 0 || o.part_index >= o.num_parts) {
    return InvalidArgument(
        "reader: need 0 <= part_index < num_parts, got part_index=" + std::to_string(o.part_index) +
        " num_parts=" + std::to_string(o.num_parts));
  }
  if (o.num_epochs <= 0) {
    return InvalidArgument("reader: num_epochs must be positive, got " +
                           std::to_string(o.num_epochs));
  }
  if (o.max_line_bytes == 0) return InvalidArgument("reader: max_line_bytes must be positive");
  if (o.queue_capacity <= 0) {
    return InvalidArgument("reader: queue_capacity must be positive, got " +
                           std::to_string(o.queue_capacity));
  }

  seps_.clear();
  for (const std::string& path : o.files) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return NotFound(path + ": cannot open for reading: " + std::strerror(errno) +
                      "; check the data path");
    }
    ReaderOptions::Format format = o.format;
    if (format == ReaderOptions::kAuto && spec_->separator() != 0) {
      ::close(fd);
      seps_.push_back(spec_->separator());
      continue;
    }
    if (format == ReaderOptions::kAuto) {
      char head[4096];
      ssize_t n;
      do {
        n = ::read(fd, head, sizeof(head));
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return DataLoss(path + ": cannot read: " + std::strerror(err));
      }
      std::string_view first(head, static_cast<size_t>(n));
      first = first.substr(0, first.find('\n'));
      format = DetectFormat(path, first);
    }
    ::close(fd);
    seps_.push_back(SepOf(format));
  }

  buffer_.resize(kBlockBytes);
  buffer_bytes_ = buffer_.size();
  current_.Shape(*spec_);
  current_.Resize(o.batch_size);
  current_rows_ = 0;
  started_ = true;
  thread_ = std::thread(&BatchReader::Run, this);
  return Status::Ok();
}

void BatchReader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  not_full_.notify_all();
  not_empty_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool BatchReader::Next(Batch* out) {
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait(lock, [this] { return !queue_.empty() || done_ || stop_; });
  if (stop_ || !status_.ok() || queue_.empty()) return false;
  std::swap(*out, queue_.front());
  free_.push_back(std::move(queue_.front()));
  queue_.pop_front();
  lock.unlock();
  not_full_.notify_one();
  return true;
}

Status BatchReader::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

bool BatchReader::PushCurrent() {
  std::unique_lock<std::mutex> lock(mu_);
  not_full_.wait(
      lock, [this] { return static_cast<int>(queue_.size()) < options_.queue_capacity || stop_; });
  if (stop_) return false;
  queue_.push_back(std::move(current_));
  if (!free_.empty()) {
    current_ = std::move(free_.back());
    free_.pop_back();
  } else {
    current_ = Batch();
  }
  lock.unlock();
  not_empty_.notify_one();
  if (current_.tables.size() != spec_->tables().size()) current_.Shape(*spec_);
  current_.truncated_tokens = 0;
  current_.size = 0;
  current_.Resize(options_.batch_size);
  current_rows_ = 0;
  return true;
}

void BatchReader::Finish(Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(status);
    done_ = true;
  }
  not_empty_.notify_all();
}

void BatchReader::Run() {
  Status status;
  bool stopped = false;
  const ReadPosition& start = options_.start;
  for (int epoch = start.epoch; epoch < options_.num_epochs && status.ok() && !stopped; ++epoch) {
    const bool resumed = epoch == start.epoch;
    epoch_ = epoch;
    line_index_ = resumed ? start.line_index : 0;
    epoch_rows_ = resumed ? start.epoch_rows : 0;
    epoch_lines_ = 0;
    epoch_bad_ = 0;
    Flow flow = Flow::kContinue;
    if (options_.max_rows >= 0 && epoch_rows_ >= options_.max_rows) flow = Flow::kEndEpoch;
    for (size_t i = resumed ? start.file_index : 0; i < options_.files.size() && flow == Flow::kContinue;
         ++i) {
      const bool first = resumed && i == start.file_index;
      status = ReadFile(i, first ? start.offset : 0, first ? start.line_number : 0, &flow);
      if (!status.ok()) break;
    }
    if (flow == Flow::kStop) stopped = status.ok();
    if (!status.ok() || stopped) break;
    if (epoch_bad_ > 0 &&
        static_cast<double>(epoch_bad_) > options_.max_bad_fraction * epoch_lines_) {
      status =
          InvalidArgument(std::to_string(epoch_bad_) + " of " + std::to_string(epoch_lines_) +
                          " lines were bad, more than max_bad_fraction=" +
                          std::to_string(options_.max_bad_fraction) + "; first bad line " +
                          first_bad_ + ". Fix the data or the format, or raise max_bad_fraction");
    }
  }
  if (status.ok() && !stopped && current_rows_ > 0 && !options_.drop_remainder) {
    current_.Resize(current_rows_);
    PushCurrent();
  }
  Finish(std::move(status));
}

Status BatchReader::ReadFile(size_t file_index, uint64_t offset, int64_t line_number,
                             Flow* flow) {
  const std::string& path = options_.files[file_index];
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(path + ": cannot open for reading: " + std::strerror(errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (offset > 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) != static_cast<off_t>(offset)) {
    const int err = errno;
    ::close(fd);
    return DataLoss(path + ": cannot seek to the resume position at byte " + std::to_string(offset) +
                    ": " + std::strerror(err) + "; was the file replaced since the checkpoint?");
  }

  Status status;
  const size_t max_line = options_.max_line_bytes;
  uint64_t base = offset;  // file offset of buffer_[0]
  size_t carry = 0;        // bytes of an unfinished line at the front of buffer_
  bool skipping = false;   // inside a too-long line, already reported
  bool eof = false;
  *flow = Flow::kContinue;
  while (!eof && *flow == Flow::kContinue) {
    // A line longer than the buffer but within the cap: grow to hold it.
    if (carry == buffer_.size()) {
      buffer_.resize(std::min(buffer_.size() * 2, max_line + 1));
      buffer_bytes_ = buffer_.size();
    }
    const ssize_t n = ::read(fd, buffer_.data() + carry, buffer_.size() - carry);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = DataLoss(path + ": read failed after line " + std::to_string(line_number) + ": " +
                        std::strerror(errno));
      break;
    }
    eof = n == 0;
    const char* p = buffer_.data();
    const char* const end = p + carry + n;
    if (skipping) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (nl == nullptr) {
        base += static_cast<uint64_t>(end - p);
        carry = 0;
        continue;
      }
      p = nl + 1;
      skipping = false;
    }
    while (p < end && *flow == Flow::kContinue) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (nl == nullptr) {
        if (!eof) break;
        nl = end;  // last line without '\n'
      }
      const uint64_t next = base + static_cast<uint64_t>((nl == end ? end : nl + 1) - buffer_.data());
      *flow = static_cast<size_t>(nl - p) > max_line
                  ? HandleLongLine(file_index, ++line_number)
                  : HandleLine(file_index, ++line_number, p, nl, next);
      p = nl + 1;
    }
    if (*flow != Flow::kContinue) break;
    const char* rest = std::min(p, end);
    carry = static_cast<size_t>(end - rest);
    base += static_cast<uint64_t>(rest - buffer_.data());
    if (carry > max_line) {
      // Judged before its end is seen, so the buffer stays bounded.
      *flow = HandleLongLine(file_index, ++line_number);
      base += carry;
      carry = 0;
      skipping = true;
    } else if (carry > 0) {
      std::memmove(buffer_.data(), rest, carry);
    }
  }
  ::close(fd);
  if (status.ok() && *flow == Flow::kStop && !pending_error_.ok()) {
    status = std::move(pending_error_);
    pending_error_ = Status();
  }
  return status;
}

BatchReader::Flow BatchReader::HandleLine(size_t file_index, int64_t line_number, const char* begin,
                                          const char* end, uint64_t next_offset) {
  if (line_number == 1 && spec_->header()) {
    // The header is no data line: it is checked, never counted or sharded.
    const Status s = CheckHeader(file_index, std::string_view(begin, end - begin));
    if (s.ok()) return Flow::kContinue;
    pending_error_ = s;
    return Flow::kStop;
  }
  if (!OwnsNextLine()) return Flow::kContinue;
  if (begin == end || (end - begin == 1 && *begin == '\r')) return Flow::kContinue;
  ++epoch_lines_;
  const int r = current_rows_;
  const int64_t truncated_before = current_.truncated_tokens;
  const LineError error = ParseLine(*spec_, std::string_view(begin, end - begin), seps_[file_index],
                                    &current_, r, &scratch_, options_.label_optional);
  if (error != LineError::kOk) {
    current_.truncated_tokens = truncated_before;
    return BadLine(file_index, line_number, scratch_);
  }
  if (current_.truncated_tokens != truncated_before) {
    truncated_.fetch_add(current_.truncated_tokens - truncated_before, std::memory_order_relaxed);
  }
  rows_.fetch_add(1, std::memory_order_relaxed);
  ++epoch_rows_;
  current_.end = ReadPosition{epoch_, static_cast<uint32_t>(file_index), next_offset, line_number,
                              line_index_, epoch_rows_};
  if (++current_rows_ == options_.batch_size && !PushCurrent()) return Flow::kStop;
  if (options_.max_rows >= 0 && epoch_rows_ >= options_.max_rows) return Flow::kEndEpoch;
  return Flow::kContinue;
}

Status BatchReader::CheckHeader(size_t file_index, std::string_view line) const {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const char sep = seps_[file_index];
  size_t pos = 0;
  for (int c = 0; c < spec_->num_columns(); ++c) {
    const size_t next = std::min(line.find(sep, pos), line.size());
    const std::string_view name = pos <= line.size() ? line.substr(pos, next - pos) : std::string_view();
    if (name != spec_->columns()[c].name || (c + 1 == spec_->num_columns()) != (next == line.size())) {
      return InvalidArgument(options_.files[file_index] + ":1: the header does not match feature spec '" +
                             spec_->name() + "': column " + std::to_string(c + 1) + " is '" +
                             std::string(name) + "', the spec says '" + spec_->columns()[c].name +
                             "' (" + std::to_string(spec_->num_columns()) +
                             " columns in all); fix the spec's columns or the file");
    }
    pos = next + 1;
  }
  return Status::Ok();
}

bool BatchReader::OwnsNextLine() {
  const int64_t index = line_index_++;
  return options_.num_parts <= 1 || index % options_.num_parts == options_.part_index;
}

BatchReader::Flow BatchReader::HandleLongLine(size_t file_index, int64_t line_number) {
  if (!OwnsNextLine()) return Flow::kContinue;
  ++epoch_lines_;
  return BadLine(file_index, line_number,
                 "line " + std::to_string(line_number) + " longer than " +
                     std::to_string(options_.max_line_bytes) +
                     " bytes (a binary file, or lines ending in a lone '\\r'?)");
}

BatchReader::Flow BatchReader::BadLine(size_t file_index, int64_t line_number,
                                       const std::string& what) {
  ++epoch_bad_;
  RecordBadLine(file_index, line_number, what);
  if (options_.strict) {
    pending_error_ = InvalidArgument(first_bad_ +
                                     " (strict mode stops at the first bad line; turn strict "
                                     "off to skip and count bad lines)");
    return Flow::kStop;
  }
  if (options_.max_bad_fraction < 0.5 && epoch_lines_ >= kWrongFormatMinLines &&
      2 * epoch_bad_ > epoch_lines_) {
    pending_error_ = InvalidArgument(
        std::to_string(epoch_bad_) + " of the first " + std::to_string(epoch_lines_) +
        " lines are bad, so the format is probably wrong (separator, column order); first bad "
        "line " +
        first_bad_);
    return Flow::kStop;
  }
  return Flow::kContinue;
}

void BatchReader::RecordBadLine(size_t file_index, int64_t line_number, const std::string& what) {
  const int64_t count = bad_lines_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::string where = options_.files[file_index] + ":" + std::to_string(line_number) + ": " + what;
  if (count <= kMaxLoggedBadLines) {
    LOG(WARNING) << where
                 << (count == kMaxLoggedBadLines
                         ? " (further bad lines are skipped and counted, not logged)"
                         : "");
  }
  if (first_bad_.empty()) first_bad_ = std::move(where);
}

Status BatchReader::MeasureRowsPerSecond(const ReaderOptions& options, double* rows_per_second,
                                         int64_t* rows) {
  BatchReader reader(options);
  Stopwatch watch;
  Status status = reader.Start();
  if (!status.ok()) return status;
  Batch batch;
  int64_t n = 0;
  while (reader.Next(&batch)) n += batch.size;
  const double seconds = watch.Seconds();
  status = reader.status();
  if (!status.ok()) return status;
  if (rows != nullptr) *rows = n;
  *rows_per_second = seconds > 0 ? n / seconds : 0.0;
  return Status::Ok();
}

}  // namespace deepfm

#include "worker/data_reader.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "common/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"

namespace deepfm {
namespace {

using ::testing::HasSubstr;
using testing_util::TempDir;
using testing_util::WriteFile;

// The criteo preset's shape, which these tests exercise.
constexpr int kNumDense = 13;
constexpr int kNumFields = 26;

// A line whose I1 is `id` (so rows can be told apart) and whose tokens are
// derived from it.
std::string Line(int64_t id, char sep, int label = -1) {
  std::string s = std::to_string(label >= 0 ? label : id % 2);
  s += sep;
  s += std::to_string(id);
  for (int d = 1; d < kNumDense; ++d) {
    s += sep;
    if (d % 4 != 0) s += std::to_string((id * 7 + d) % 50);  // some empty
  }
  for (int f = 0; f < kNumFields; ++f) {
    s += sep;
    if (f % 9 != 8) s += "t" + std::to_string((id + f) % 13);
  }
  return s;
}

std::string Lines(int64_t first, int64_t n, char sep) {
  std::string s;
  for (int64_t i = first; i < first + n; ++i) s += Line(i, sep) + "\n";
  return s;
}

// I1 of a parsed row, undoing the transform.
int64_t RowId(const Batch& b, int row) {
  return std::llround(std::expm1(double(b.dense[size_t(row) * kNumDense])));
}

struct Parsed {
  float label = -1;
  float dense[kNumDense];
  uint64_t keys[kNumFields];
  std::string what;
  LineError error;
};

Parsed Parse(const std::string& line, char sep = ',') {
  Parsed p;
  Batch b;
  b.Shape(*CriteoSpec());
  b.Resize(1);
  p.error = ParseLine(*CriteoSpec(), line, sep, &b, 0, &p.what);
  p.label = b.labels[0];
  std::copy(b.dense.begin(), b.dense.end(), p.dense);
  std::copy(b.tables[0].keys.begin(), b.tables[0].keys.end(), p.keys);
  return p;
}

std::string Join(const std::vector<std::string>& cols, char sep) {
  std::string s;
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) s += sep;
    s += cols[i];
  }
  return s;
}

std::vector<std::string> GoodColumns() {
  std::vector<std::string> c = {"1"};
  for (int d = 0; d < kNumDense; ++d) c.push_back(std::to_string(d));
  for (int f = 0; f < kNumFields; ++f) c.push_back("68fd1e64");
  return c;
}

TEST(ParseLineTest, ParsesValuesTransformsAndHashes) {
  std::vector<std::string> c = GoodColumns();
  c[1] = "";        // empty dense -> 0
  c[2] = "-3";      // negative -> log1p(0) = 0
  c[3] = "2.5";     // decimal
  c[4] = "1e2";     // exponent
  c[5] = "123456";  // beyond any small-integer table
  c[6] = "+7";
  c[7] = "-0.5";
  c[1 + kNumDense + 0] = "";  // empty token is a token
  c[1 + kNumDense + 3] = "abc";
  for (char sep : {',', '\t'}) {
    Parsed p = Parse(Join(c, sep), sep);
    ASSERT_EQ(p.error, LineError::kOk) << p.what;
    EXPECT_EQ(p.label, 1.0f);
    EXPECT_EQ(p.dense[0], 0.0f);
    EXPECT_EQ(p.dense[1], 0.0f);
    EXPECT_FLOAT_EQ(p.dense[2], std::log1p(2.5f));
    EXPECT_FLOAT_EQ(p.dense[3], std::log1p(100.0f));
    EXPECT_FLOAT_EQ(p.dense[4], std::log1p(123456.0f));
    EXPECT_FLOAT_EQ(p.dense[5], std::log1p(7.0f));
    EXPECT_EQ(p.dense[6], 0.0f);
    for (int d = 7; d < kNumDense; ++d) EXPECT_FLOAT_EQ(p.dense[d], std::log1p(float(d)));
    EXPECT_EQ(p.keys[0], FeatureKey(0, ""));
    EXPECT_EQ(p.keys[3], FeatureKey(3, "abc"));
    for (int f : {1, 2, 4, 25}) EXPECT_EQ(p.keys[f], FeatureKey(f, "68fd1e64")) << f;
    EXPECT_NE(p.keys[1], p.keys[2]) << "same token in two fields must give two keys";
  }
}

TEST(ParseLineTest, DropsCarriageReturnAndAcceptsFloatLabels) {
  std::vector<std::string> c = GoodColumns();
  c[0] = "0.0";
  Parsed p = Parse(Join(c, ',') + "\r");
  ASSERT_EQ(p.error, LineError::kOk) << p.what;
  EXPECT_EQ(p.label, 0.0f);
  EXPECT_EQ(p.keys[25], FeatureKey(25, "68fd1e64"));
  // An empty last token followed by CR.
  c.back() = "";
  p = Parse(Join(c, ',') + "\r");
  ASSERT_EQ(p.error, LineError::kOk) << p.what;
  EXPECT_EQ(p.keys[25], FeatureKey(25, ""));
}

TEST(ParseLineTest, RejectsWrongFieldCount) {
  std::vector<std::string> c = GoodColumns();
  std::vector<std::string> shorter(c.begin(), c.end() - 1);
  Parsed p = Parse(Join(shorter, ','));
  EXPECT_EQ(p.error, LineError::kFieldCount);
  EXPECT_THAT(p.what, HasSubstr("found 39"));
  c.push_back("extra");
  p = Parse(Join(c, ','));
  EXPECT_EQ(p.error, LineError::kFieldCount);
  EXPECT_THAT(p.what, HasSubstr("found 41"));
  // A TSV line read as CSV is one column.
  p = Parse(Join(GoodColumns(), '\t'), ',');
  EXPECT_EQ(p.error, LineError::kFieldCount);
  EXPECT_THAT(p.what, HasSubstr("found 1"));
  // Too short to reach the dense columns.
  EXPECT_EQ(Parse("1").error, LineError::kFieldCount);
  EXPECT_EQ(Parse("1,2,3").error, LineError::kFieldCount);
}

TEST(ParseLineTest, RejectsNonNumericDense) {
  for (const char* bad :
       {"abc", "1.2.3", "-", "+", "nan", "inf", " 5", "5 ", "0x10", "--1", "1e"}) {
    std::vector<std::string> c = GoodColumns();
    c[3] = bad;
    Parsed p = Parse(Join(c, ','));
    EXPECT_EQ(p.error, LineError::kBadDense) << "'" << bad << "'";
    EXPECT_THAT(p.what, HasSubstr("I3")) << bad;
  }
}

TEST(ParseLineTest, RejectsBadLabel) {
  for (const char* bad : {"2", "", "x", "0.5", "-1", "yes"}) {
    std::vector<std::string> c = GoodColumns();
    c[0] = bad;
    Parsed p = Parse(Join(c, ','));
    EXPECT_EQ(p.error, LineError::kBadLabel) << "'" << bad << "'";
    EXPECT_THAT(p.what, HasSubstr("label")) << bad;
  }
}

TEST(ParseTextTest, ParsesAllLinesAndCountsBad) {
  std::string text = Lines(0, 5, ',') + "garbage\n\n" + Line(5, ',');  // no final newline
  Batch batch;
  EXPECT_EQ(ParseText(*CriteoSpec(), text, ',', &batch), 1);
  ASSERT_EQ(batch.size, 6);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(RowId(batch, i), i);
}

TEST(DetectFormatTest, ByExtensionThenContent) {
  const std::string tsv = Line(1, '\t');
  const std::string csv = Line(1, ',');
  EXPECT_EQ(DetectFormat("a/train.csv", tsv), ReaderOptions::kCsv);
  EXPECT_EQ(DetectFormat("a/train.tsv", csv), ReaderOptions::kTsv);
  EXPECT_EQ(DetectFormat("a/train.txt", tsv), ReaderOptions::kTsv);
  EXPECT_EQ(DetectFormat("a/train.txt", csv), ReaderOptions::kCsv);
  EXPECT_EQ(DetectFormat("data", tsv), ReaderOptions::kTsv);
}

// Reads everything; returns row ids in order.
std::vector<int64_t> ReadAll(const ReaderOptions& options, Status* status,
                             std::vector<int>* batch_sizes = nullptr, int64_t* bad = nullptr) {
  BatchReader reader(options);
  *status = reader.Start();
  std::vector<int64_t> ids;
  if (!status->ok()) return ids;
  Batch batch;
  while (reader.Next(&batch)) {
    if (batch_sizes != nullptr) batch_sizes->push_back(batch.size);
    for (int i = 0; i < batch.size; ++i) ids.push_back(RowId(batch, i));
  }
  *status = reader.status();
  if (bad != nullptr) *bad = reader.bad_lines();
  return ids;
}

std::vector<int64_t> Range(int64_t first, int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = first; i < first + n; ++i) v.push_back(i);
  return v;
}

TEST(BatchReaderTest, ReadsCsvInBatchesWithMatchingContent) {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string text = Lines(0, 10, ',');
  WriteFile(dir + "/train.csv", text);
  ReaderOptions o;
  o.files = {dir + "/train.csv"};
  o.batch_size = 4;
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  Batch expected;
  ASSERT_EQ(ParseText(*CriteoSpec(), text, ',', &expected), 0);
  Batch batch;
  std::vector<int> sizes;
  int row = 0;
  while (reader.Next(&batch)) {
    sizes.push_back(batch.size);
    for (int i = 0; i < batch.size; ++i, ++row) {
      EXPECT_EQ(batch.labels[i], expected.labels[row]);
      for (int d = 0; d < kNumDense; ++d) {
        EXPECT_EQ(batch.dense[i * kNumDense + d], expected.dense[row * kNumDense + d]);
      }
      for (int f = 0; f < kNumFields; ++f) {
        EXPECT_EQ(batch.tables[0].keys[i * kNumFields + f], expected.tables[0].keys[row * kNumFields + f]);
      }
    }
  }
  EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
  EXPECT_EQ(sizes, (std::vector<int>{4, 4, 2}));
  EXPECT_EQ(reader.rows(), 10);
  EXPECT_EQ(reader.bad_lines(), 0);
}

TEST(BatchReaderTest, ReadsTsvAutoDetectedAndForced) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/train.txt", Lines(0, 7, '\t'));
  WriteFile(dir + "/part-0", Lines(7, 3, '\t'));
  ReaderOptions o;
  o.files = {dir + "/train.txt", dir + "/part-0"};
  Status s;
  EXPECT_EQ(ReadAll(o, &s), Range(0, 10));
  EXPECT_TRUE(s.ok()) << s.ToString();
  o.format = ReaderOptions::kTsv;
  EXPECT_EQ(ReadAll(o, &s), Range(0, 10));
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(BatchReaderTest, NoTrailingNewlineCrlfAndBlankLines) {
  TempDir tmp;
  const std::string dir = tmp.path();
  std::string text;
  for (int i = 0; i < 5; ++i) text += Line(i, ',') + "\r\n";
  text += "\n\r\n";
  text += Line(5, ',');  // last line without newline
  WriteFile(dir + "/a.csv", text);
  ReaderOptions o;
  o.files = {dir + "/a.csv"};
  Status s;
  int64_t bad = -1;
  EXPECT_EQ(ReadAll(o, &s, nullptr, &bad), Range(0, 6));
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(bad, 0);
}

TEST(BatchReaderTest, LinesStraddlingReadBlocks) {
  // More than one 4 MiB read block, so lines cross block boundaries.
  TempDir tmp;
  const std::string dir = tmp.path();
  const int64_t n = 60000;
  const std::string text = Lines(0, n, ',');
  ASSERT_GT(text.size(), size_t{5} << 20);
  WriteFile(dir + "/big.csv", text);
  ReaderOptions o;
  o.files = {dir + "/big.csv"};
  o.batch_size = 1000;
  Status s;
  EXPECT_EQ(ReadAll(o, &s), Range(0, n));
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(BatchReaderTest, MissingFileErrorNamesPath) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/ok.csv", Lines(0, 3, ','));
  ReaderOptions o;
  o.files = {dir + "/ok.csv", dir + "/nope.csv"};
  BatchReader reader(o);
  Status s = reader.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(dir + "/nope.csv"));
}

TEST(BatchReaderTest, RejectsBadOptions) {
  ReaderOptions o;
  EXPECT_FALSE(BatchReader(o).Start().ok());  // no files
  o.files = {"x.csv"};
  o.batch_size = 0;
  EXPECT_THAT(BatchReader(o).Start().message(), HasSubstr("batch_size"));
  o.batch_size = 8;
  o.part_index = 2;
  o.num_parts = 2;
  EXPECT_THAT(BatchReader(o).Start().message(), HasSubstr("part_index"));
  o.part_index = 0;
  o.max_line_bytes = 0;
  EXPECT_THAT(BatchReader(o).Start().message(), HasSubstr("max_line_bytes"));
}

std::string FileWithBadLines(const std::string& dir) {
  std::string text = Lines(0, 50, ',');
  std::vector<std::string> c = GoodColumns();
  text += Join(std::vector<std::string>(c.begin(), c.end() - 2), ',') + "\n";  // line 51
  text += Lines(50, 25, ',');
  c[5] = "12x";
  text += Join(c, ',') + "\n";  // line 77
  text += Lines(75, 25, ',');
  c = GoodColumns();
  c[0] = "3";
  text += Join(c, ',') + "\n";  // line 103
  const std::string path = dir + "/bad.csv";
  WriteFile(path, text);
  return path;
}

TEST(BatchReaderTest, SkipsAndCountsEachKindOfBadLine) {
  TempDir tmp;
  const std::string path = FileWithBadLines(tmp.path());
  ReaderOptions o;
  o.files = {path};
  o.max_bad_fraction = 0.05;
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  std::vector<int64_t> ids;
  Batch batch;
  while (reader.Next(&batch)) {
    for (int i = 0; i < batch.size; ++i) ids.push_back(RowId(batch, i));
  }
  EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
  EXPECT_EQ(ids, Range(0, 100));
  EXPECT_EQ(reader.rows(), 100);
  EXPECT_EQ(reader.bad_lines(), 3);
}

TEST(BatchReaderTest, TooManyBadLinesFailsNamingFirstBadLine) {
  TempDir tmp;
  const std::string path = FileWithBadLines(tmp.path());
  ReaderOptions o;
  o.files = {path};
  o.max_bad_fraction = 0.01;  // 3 of 103 is more
  Status s;
  int64_t bad = 0;
  ReadAll(o, &s, nullptr, &bad);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(path + ":51: expected 40 columns"));
  EXPECT_THAT(s.message(), HasSubstr("max_bad_fraction"));
  EXPECT_EQ(bad, 3);
}

TEST(BatchReaderTest, StrictModeStopsAtFirstBadLine) {
  TempDir tmp;
  const std::string path = FileWithBadLines(tmp.path());
  ReaderOptions o;
  o.files = {path};
  o.strict = true;
  o.max_bad_fraction = 1.0;
  Status s;
  int64_t bad = 0;
  ReadAll(o, &s, nullptr, &bad);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(path + ":51:"));
  EXPECT_THAT(s.message(), HasSubstr("strict"));
  EXPECT_EQ(bad, 1);
}

TEST(BatchReaderTest, StrictModeNamesDenseAndLabelProblems) {
  TempDir tmp;
  const std::string dir = tmp.path();
  std::vector<std::string> c = GoodColumns();
  c[5] = "12x";
  WriteFile(dir + "/dense.csv", Lines(0, 3, ',') + Join(c, ',') + "\n");
  c = GoodColumns();
  c[0] = "3";
  WriteFile(dir + "/label.csv", Lines(0, 2, ',') + Join(c, ','));
  ReaderOptions o;
  o.strict = true;
  Status s;
  o.files = {dir + "/dense.csv"};
  ReadAll(o, &s);
  EXPECT_THAT(s.message(), HasSubstr(dir + "/dense.csv:4: numeric column I5 is '12x'"));
  o.files = {dir + "/label.csv"};
  ReadAll(o, &s);
  EXPECT_THAT(s.message(), HasSubstr(dir + "/label.csv:3: label is '3'"));
}

// A file whose "lines" end in a lone '\r' is one endless line: a bad line
// reported as such, read through a buffer that does not grow with it.
TEST(BatchReaderTest, ACrOnlyFileIsOneOverlongBadLineNotAnEndlessBuffer) {
  TempDir tmp;
  std::string text;
  while (text.size() < (10u << 20)) text += Line(static_cast<int64_t>(text.size()), ',') + "\r";
  const std::string path = tmp.path() + "/mac.csv";
  WriteFile(path, text);
  ReaderOptions o;
  o.files = {path};
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  while (reader.Next(&batch)) {
  }
  EXPECT_THAT(reader.status().message(), HasSubstr(path + ":1: line 1 longer than 1048576 bytes"));
  EXPECT_EQ(reader.bad_lines(), 1);
  EXPECT_EQ(reader.rows(), 0);
  EXPECT_LT(reader.buffer_bytes(), text.size() / 2);
}

// One overlong line among good ones is skipped to its '\n' and counted, both
// when it ends within one read (4 KiB cap) and when it spans several reads
// (the 1 MiB default, a 9 MiB line).
TEST(BatchReaderTest, AnOverlongLineIsABadLineAndTheRestIsRead) {
  TempDir tmp;
  for (const size_t cap : {size_t{4096}, size_t{1} << 20}) {
    const size_t long_bytes = cap == 4096 ? 100000 : (9u << 20);
    const std::string path = tmp.path() + "/long" + std::to_string(cap) + ".csv";
    WriteFile(path, Lines(0, 50, ',') + std::string(long_bytes, 'x') + "\n" + Lines(50, 50, ','));
    ReaderOptions o;
    o.files = {path};
    o.max_line_bytes = cap;
    o.max_bad_fraction = 0.05;
    BatchReader reader(o);
    ASSERT_TRUE(reader.Start().ok());
    std::vector<int64_t> ids;
    Batch batch;
    while (reader.Next(&batch)) {
      for (int i = 0; i < batch.size; ++i) ids.push_back(RowId(batch, i));
    }
    EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
    EXPECT_EQ(ids, Range(0, 100)) << cap;
    EXPECT_EQ(reader.bad_lines(), 1) << cap;
    if (cap > 4096) {
      EXPECT_LT(reader.buffer_bytes(), long_bytes);  // never held it whole
    }
    // Strict mode stops there, naming it.
    o.strict = true;
    Status s;
    ReadAll(o, &s);
    EXPECT_THAT(s.message(), HasSubstr(path + ":51: line 51 longer than " + std::to_string(cap) +
                                       " bytes"));
    // Split between two parts, the line is one part's bad line, once.
    o.strict = false;
    o.num_parts = 2;
    int64_t bad_total = 0;
    std::vector<int64_t> all;
    for (int part = 0; part < 2; ++part) {
      o.part_index = part;
      int64_t bad = 0;
      for (int64_t id : ReadAll(o, &s, nullptr, &bad)) all.push_back(id);
      EXPECT_TRUE(s.ok()) << s.ToString();
      bad_total += bad;
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, Range(0, 100));
    EXPECT_EQ(bad_total, 1);
  }
}

TEST(BatchReaderTest, WrongFormatFailsEarly) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/train.csv", Lines(0, 3000, '\t'));  // extension lies
  ReaderOptions o;
  o.files = {dir + "/train.csv"};
  Status s;
  int64_t bad = 0;
  ReadAll(o, &s, nullptr, &bad);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("format is probably wrong"));
  EXPECT_LT(bad, 3000);
}

TEST(BatchReaderTest, PartsSplitByLineDisjointAndComplete) {
  TempDir tmp;
  const std::string dir = tmp.path();
  // Uneven files, plus a blank line, which still takes a line number.
  WriteFile(dir + "/a.csv", Lines(0, 11, ','));
  WriteFile(dir + "/b.csv", Lines(11, 1, ',') + "\n" + Lines(12, 20, ','));
  const int kParts = 3;
  std::set<int64_t> seen;
  size_t total = 0;
  for (int part = 0; part < kParts; ++part) {
    ReaderOptions o;
    o.files = {dir + "/a.csv", dir + "/b.csv"};
    o.batch_size = 5;
    o.part_index = part;
    o.num_parts = kParts;
    Status s;
    std::vector<int64_t> ids = ReadAll(o, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_GE(ids.size(), 10u);
    EXPECT_LE(ids.size(), 11u);
    for (int64_t id : ids) {
      // Line number across the files; the blank line sits after id 11.
      const int64_t line = id <= 11 ? id : id + 1;
      EXPECT_EQ(line % kParts, part) << "id " << id;
    }
    total += ids.size();
    seen.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(total, 32u);
  EXPECT_EQ(seen.size(), 32u);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 31);
}

TEST(BatchReaderTest, EpochsRemainderAndMaxRows) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/a.csv", Lines(0, 10, ','));
  ReaderOptions o;
  o.files = {dir + "/a.csv"};
  o.batch_size = 4;
  o.num_epochs = 2;
  Status s;
  std::vector<int> sizes;
  std::vector<int64_t> ids = ReadAll(o, &s, &sizes);
  std::vector<int64_t> twice = Range(0, 10);
  twice.insert(twice.end(), twice.begin(), twice.end());
  EXPECT_EQ(ids, twice);
  EXPECT_EQ(sizes, (std::vector<int>{4, 4, 4, 4, 4}));

  o.num_epochs = 1;
  o.drop_remainder = true;
  sizes.clear();
  EXPECT_EQ(ReadAll(o, &s, &sizes), Range(0, 8));
  EXPECT_EQ(sizes, (std::vector<int>{4, 4}));

  o.drop_remainder = false;
  o.max_rows = 6;
  o.num_epochs = 2;
  ids = ReadAll(o, &s);
  std::vector<int64_t> expected = Range(0, 6);
  expected.insert(expected.end(), expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(BatchReaderTest, StopEarlyWithFullQueueDoesNotHang) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/a.csv", Lines(0, 5000, ','));
  ReaderOptions o;
  o.files = {dir + "/a.csv"};
  o.batch_size = 10;
  o.queue_capacity = 2;
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  Batch batch;
  ASSERT_TRUE(reader.Next(&batch));
  reader.Stop();
  EXPECT_FALSE(reader.Next(&batch));
}

TEST(BatchReaderTest, MeasuresThroughput) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/a.csv", Lines(0, 20000, ','));
  ReaderOptions o;
  o.files = {dir + "/a.csv"};
  double rate = 0;
  int64_t rows = 0;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(BatchReader::MeasureRowsPerSecond(o, &rate, &rows).ok());
  const double outside = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(rows, 20000);
  // The measured window lies inside the call: the rate can be no lower than
  // rows over the call's whole time (a rate in the wrong unit fails this).
  EXPECT_GE(rate * outside, 20000 * 0.999) << "rate " << rate << " rows/s over " << outside << " s";
}

// Row ids of every batch, and each batch's end position.
struct Delivered {
  std::vector<std::vector<int64_t>> ids;
  std::vector<ReadPosition> ends;
};

Delivered ReadEverything(const ReaderOptions& o) {
  Delivered out;
  BatchReader reader(o);
  EXPECT_TRUE(reader.Start().ok());
  Batch b;
  while (reader.Next(&b)) {
    std::vector<int64_t> ids;
    for (int i = 0; i < b.size; ++i) ids.push_back(RowId(b, i));
    out.ids.push_back(ids);
    out.ends.push_back(b.end);
  }
  EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
  return out;
}

// A reader started at any batch's end position delivers exactly the rows
// that followed it, across files, epochs, blank and bad lines, and with the
// data shared between two readers. This is what a resumed job relies on to
// train every row once.
TEST(BatchReaderResumeTest, StartingAtABatchEndContinuesWithTheNextRow) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/a.csv", Lines(0, 23, ',') + "\nbad line\n" + Lines(23, 4, ','));
  WriteFile(dir + "/b.csv", Lines(100, 17, ','));  // no blank line, ends with '\n'
  WriteFile(dir + "/c.csv", Lines(200, 5, ',') + Line(205, ','));  // no final '\n'
  for (int parts : {1, 2}) {
    for (int part = 0; part < parts; ++part) {
      SCOPED_TRACE("part " + std::to_string(part) + " of " + std::to_string(parts));
      ReaderOptions o;
      o.files = {dir + "/a.csv", dir + "/b.csv", dir + "/c.csv"};
      o.batch_size = 5;
      o.num_epochs = 2;
      o.part_index = part;
      o.num_parts = parts;
      o.max_bad_fraction = 0.5;
      const Delivered all = ReadEverything(o);
      ASSERT_GT(all.ids.size(), 4u);
      for (size_t k = 0; k < all.ids.size(); ++k) {
        ReaderOptions from = o;
        from.start = all.ends[k];
        const Delivered rest = ReadEverything(from);
        std::vector<int64_t> want, got;
        for (size_t j = k + 1; j < all.ids.size(); ++j) want.insert(want.end(), all.ids[j].begin(), all.ids[j].end());
        for (const auto& ids : rest.ids) got.insert(got.end(), ids.begin(), ids.end());
        ASSERT_EQ(got, want) << "resuming after batch " << k << " (epoch " << all.ends[k].epoch
                             << ", file " << all.ends[k].file_index << ", byte "
                             << all.ends[k].offset << ")";
      }
    }
  }
}

// A position honours max_rows: a reader resumed at the epoch's row limit
// goes on with the next epoch.
TEST(BatchReaderResumeTest, ResumesAtTheRowLimitIntoTheNextEpoch) {
  TempDir tmp;
  const std::string dir = tmp.path();
  WriteFile(dir + "/a.csv", Lines(0, 20, ','));
  ReaderOptions o;
  o.files = {dir + "/a.csv"};
  o.batch_size = 4;
  o.num_epochs = 2;
  o.max_rows = 8;
  const Delivered all = ReadEverything(o);
  ASSERT_EQ(all.ids.size(), 4u);
  ReaderOptions from = o;
  from.start = all.ends[1];  // the end of epoch 0's 8 rows
  const Delivered rest = ReadEverything(from);
  ASSERT_EQ(rest.ids.size(), 2u);
  EXPECT_EQ(rest.ids[0], (std::vector<int64_t>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace deepfm

namespace deepfm {
namespace {

// A hand-worked line of train.py's columns (DESIGN.md §3b): the elm_exact
// preset, whose numeric inputs are raw; the elm preset reads the same
// columns and keys with log1p numerics.
class ElmLineTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(FeatureSpec::Load("elm_exact", &spec_).ok()); }

  static std::string ElmLine() {
    const std::vector<std::string> c = {
        "1",        // clicked
        "",         // user_id: empty, dropped
        "",         // gender: empty -> -99
        "7",        // visit_city, shared with city_id
        "25.5", "1",
        "",         // ctr_30: empty -> 0
        "3", "76.5",
        "42",       // shop_id, shared with shop_id_list
        "900",      // item_id
        "7",        // city_id: the same token as visit_city
        "",         // district_id: empty -> "0", looked up
        "",         // shop_aoi_id: empty, dropped
        "wx4", "wx4g0", "5", "3", "11", "1", "2", "3",
        "42;43;",   // shop_id_list: an empty last token is a token
        "",         // item_id_list: empty -> one "" token
        "3;4", "11", "5;5",
        "10;20",    // price_list: mean 15
        "",         // shop_aoi_id_list: one "" token
        "wx4",
        "",         // timediff_list: empty -> "0"
        "",         // hours_list: empty -> "-0"
        "lunch;brunch;tea",  // time_type_list: brunch is outside the vocabulary
        "1;2",      // weekdays_list: ignored
        "",         // times: empty -> "0"
        "12",
        "brunch",   // time_type: outside the vocabulary, nothing
        "3",        // weekdays: ignored
        "wx4g0"};   // geohash12, shared with shop_geohash_12
    EXPECT_EQ(c.size(), 39u);
    std::string s;
    for (size_t i = 0; i < c.size(); ++i) s += (i ? "," : "") + c[i];
    return s;
  }

  const FeatureSpec::ColumnInfo& Col(const std::string& name) const {
    for (const auto& c : spec_->columns()) {
      if (c.name == name) return c;
    }
    ADD_FAILURE() << name;
    return spec_->columns()[0];
  }
  // The keys column `name` contributed to row 0.
  std::vector<uint64_t> KeysOf(const Batch& b, const std::string& name) const {
    const auto& c = Col(name);
    int32_t begin, end;
    b.tables[c.table].Range(0, c.member, &begin, &end);
    return {b.tables[c.table].keys.begin() + begin, b.tables[c.table].keys.begin() + end};
  }
  uint64_t Key(const std::string& column, const std::string& token) const {
    return FeatureKey(Col(column).key_seed, token);
  }

  FeatureSpecPtr spec_;
};

// --hash_buckets / --tf: each table a fixed bucket of N rows, TF's
// categorical_column_with_hash_bucket. A token's key is its embedding
// variable key folded mod N (and spread again), so a table has at most N.
TEST_F(ElmLineTest, HashBucketsFoldEachTablesKeysIntoNRows) {
  spec::FeatureSpec proto = spec_->proto();
  for (spec::Table& t : *proto.mutable_tables()) t.set_hash_buckets(3);
  FeatureSpecPtr bucketed;
  ASSERT_TRUE(FeatureSpec::FromProto(proto, "bucketed", &bucketed).ok());
  Batch plain, folded;
  for (auto [spec, b] : {std::pair{spec_.get(), &plain}, std::pair{bucketed.get(), &folded}}) {
    b->Shape(*spec);
    b->Resize(1);
    ASSERT_EQ(ParseLine(*spec, ElmLine(), ',', b, 0, nullptr), LineError::kOk);
  }
  size_t keys = 0;
  for (size_t t = 0; t < plain.tables.size(); ++t) {
    uint32_t seed = 0;
    for (const auto& c : spec_->columns()) {
      if (c.table == static_cast<int>(t)) seed = c.key_seed;
    }
    ASSERT_EQ(plain.tables[t].keys.size(), folded.tables[t].keys.size()) << t;
    std::set<uint64_t> distinct;
    for (size_t i = 0; i < plain.tables[t].keys.size(); ++i) {
      EXPECT_EQ(folded.tables[t].keys[i], BucketKey(seed, plain.tables[t].keys[i], 3)) << t;
      EXPECT_NE(folded.tables[t].keys[i], plain.tables[t].keys[i]) << t;
      distinct.insert(folded.tables[t].keys[i]);
    }
    EXPECT_LE(distinct.size(), 3u) << "table " << t;
    keys += plain.tables[t].keys.size();
  }
  EXPECT_GT(keys, 20u);
  EXPECT_NE(bucketed->fingerprint(), spec_->fingerprint()) << "a bucketed job is another model";
}

TEST_F(ElmLineTest, ParsesDefaultsListsVocabulariesAndSharedKeys) {
  Batch b;
  b.Shape(*spec_);
  b.Resize(1);
  std::string what;
  ASSERT_EQ(ParseLine(*spec_, ElmLine(), ',', &b, 0, &what), LineError::kOk) << what;
  EXPECT_EQ(b.labels[0], 1.0f);
  const std::vector<float> numeric = {-99, 25.5f, 1, 0, 3, 76.5f, 1, 2, 3, 15, 0, 12};
  ASSERT_EQ(b.dense, numeric);
  {
    FeatureSpecPtr elm;
    ASSERT_TRUE(FeatureSpec::Load("elm", &elm).ok());
    Batch e;
    e.Shape(*elm);
    e.Resize(1);
    ASSERT_EQ(ParseLine(*elm, ElmLine(), ',', &e, 0, nullptr), LineError::kOk);
    for (size_t i = 0; i < numeric.size(); ++i) {
      EXPECT_FLOAT_EQ(e.dense[i], std::log1p(std::max(numeric[i], 0.0f))) << "elm numeric " << i;
    }
    for (size_t t = 0; t < e.tables.size(); ++t) EXPECT_EQ(e.tables[t].keys, b.tables[t].keys) << t;
  }
  EXPECT_TRUE(KeysOf(b, "user_id").empty()) << "an empty single value contributes nothing";
  EXPECT_TRUE(KeysOf(b, "shop_aoi_id").empty());
  EXPECT_EQ(KeysOf(b, "district_id"), std::vector<uint64_t>{Key("district_id", "0")})
      << "an empty cell reads as its default";
  EXPECT_EQ(KeysOf(b, "times"), std::vector<uint64_t>{Key("times", "0")});
  EXPECT_EQ(KeysOf(b, "timediff_list"), std::vector<uint64_t>{Key("timediff_list", "0")});
  EXPECT_EQ(KeysOf(b, "item_id_list"), std::vector<uint64_t>{Key("item_id_list", "")})
      << "an empty list cell is one \"\" token";
  EXPECT_EQ(KeysOf(b, "shop_aoi_id_list"), std::vector<uint64_t>{Key("shop_aoi_id_list", "")});
  EXPECT_EQ(KeysOf(b, "shop_id_list"),
            (std::vector<uint64_t>{Key("shop_id_list", "42"), Key("shop_id_list", "43"),
                                   Key("shop_id_list", "")}));
  // Shared pairs: equal tokens, equal keys, one table.
  EXPECT_EQ(KeysOf(b, "shop_id"), std::vector<uint64_t>{KeysOf(b, "shop_id_list")[0]});
  EXPECT_EQ(KeysOf(b, "visit_city"), KeysOf(b, "city_id"));
  EXPECT_EQ(KeysOf(b, "shop_geohash_12"), KeysOf(b, "geohash12"));
  EXPECT_EQ(KeysOf(b, "brand_id_list"), (std::vector<uint64_t>(2, KeysOf(b, "brand_id")[0])));
  EXPECT_NE(Key("shop_id", "42"), Key("item_id", "42")) << "two tables, two seeds";
  // Vocabularies: a word outside contributes nothing.
  EXPECT_TRUE(KeysOf(b, "time_type").empty());
  EXPECT_EQ(KeysOf(b, "time_type_list"),
            (std::vector<uint64_t>{Key("time_type_list", "lunch"), Key("time_type_list", "tea")}));
  EXPECT_EQ(b.truncated_tokens, 0);
  // Every table's keys are its members' in order: 1 + 3 for the shop table.
  const auto& shop = b.tables[Col("shop_id").table];
  EXPECT_EQ(shop.splits, (std::vector<int32_t>{0, 1, 4}));
}

TEST_F(ElmLineTest, AListOverItsCapIsCutAndCounted) {
  spec::FeatureSpec proto = spec_->proto();
  for (spec::Column& c : *proto.mutable_columns()) {
    if (c.name() == "shop_id_list") c.mutable_list()->set_max_length(2);
  }
  ASSERT_TRUE(FeatureSpec::FromProto(proto, "capped", &spec_).ok());
  Batch b;
  b.Shape(*spec_);
  b.Resize(1);
  ASSERT_EQ(ParseLine(*spec_, ElmLine(), ',', &b, 0), LineError::kOk);
  EXPECT_EQ(KeysOf(b, "shop_id_list"),
            (std::vector<uint64_t>{Key("shop_id_list", "42"), Key("shop_id_list", "43")}));
  EXPECT_EQ(b.truncated_tokens, 1);

  // The reader counts every cut over the file.
  TempDir tmp;
  const std::string path = tmp.path() + "/elm.csv";
  WriteFile(path, ElmLine() + "\n" + ElmLine() + "\n");
  ReaderOptions o;
  o.files = {path};
  o.spec = spec_;
  o.strict = true;
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  Batch got;
  ASSERT_TRUE(reader.Next(&got));
  EXPECT_EQ(got.size, 2);
  EXPECT_EQ(got.truncated_tokens, 2);
  EXPECT_FALSE(reader.Next(&got));
  EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
  EXPECT_EQ(reader.truncated_tokens(), 2);
}

TEST_F(ElmLineTest, BadCellsNameTheirColumn) {
  std::string line = ElmLine();
  Batch b;
  b.Shape(*spec_);
  b.Resize(1);
  std::string what;
  std::string bad_price = line;
  bad_price.replace(bad_price.find("10;20"), 5, "10;x");
  EXPECT_EQ(ParseLine(*spec_, bad_price, ',', &b, 0, &what), LineError::kBadDense);
  EXPECT_THAT(what, HasSubstr("numeric list column price_list is '10;x'"));
  EXPECT_EQ(ParseLine(*spec_, line + ",extra", ',', &b, 0, &what), LineError::kFieldCount);
  EXPECT_THAT(what, HasSubstr("expected 39 columns (feature spec 'elm_exact')"));
  std::string bad_gender = line;
  bad_gender.replace(bad_gender.find("1,,,7"), 5, "1,,m,7");
  EXPECT_EQ(ParseLine(*spec_, bad_gender, ',', &b, 0, &what), LineError::kBadDense);
  EXPECT_THAT(what, HasSubstr("numeric column gender is 'm'"));
}

TEST_F(ElmLineTest, ReadsRowsOfManyTablesInBatches) {
  TempDir tmp;
  const std::string path = tmp.path() + "/elm.csv";
  std::string text;
  for (int i = 0; i < 5; ++i) text += ElmLine() + "\n";
  WriteFile(path, text);
  ReaderOptions o;
  o.files = {path};
  o.spec = spec_;
  o.batch_size = 2;
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  Batch b;
  std::vector<int> sizes;
  while (reader.Next(&b)) {
    sizes.push_back(b.size);
    const auto& shop = b.tables[Col("shop_id").table];
    ASSERT_EQ(shop.splits.size(), static_cast<size_t>(b.size) * 2 + 1);
    EXPECT_EQ(shop.keys.size(), static_cast<size_t>(4 * b.size));
    for (int r = 0; r < b.size; ++r) EXPECT_EQ(shop.splits[2 * r + 2] - shop.splits[2 * r], 4);
  }
  EXPECT_EQ(sizes, (std::vector<int>{2, 2, 1}));
}

// A user's own CSV: a header row, the label not first, an id column ignored,
// tabs.
TEST(UserSpecReaderTest, HeaderedTsvWithTheLabelInside) {
  FeatureSpecPtr spec;
  ASSERT_TRUE(FeatureSpec::Parse(R"pb(
    name: "mine"
    layout { separator: "\t" header: true }
    columns { name: "id" ignored { } }
    columns { name: "price" numeric { transform: LOG1P default_value: 3 } }
    columns { name: "clicked" label { } }
    columns { name: "city" categorical { } }
    columns { name: "tags" list { separator: "|" combiner: SQRTN } }
    tables { name: "city" dim: 4 columns: "city" }
    tables { name: "tags" dim: 4 columns: "tags" }
  )pb", "mine.pbtxt", &spec).ok());
  TempDir tmp;
  const std::string path = tmp.path() + "/data.tsv";
  WriteFile(path, "id\tprice\tclicked\tcity\ttags\nu1\t\t1\tparis\ta|b\nu2\t9\t0\t\t\n");
  ReaderOptions o;
  o.files = {path};
  o.spec = spec;
  o.strict = true;
  BatchReader reader(o);
  ASSERT_TRUE(reader.Start().ok());
  Batch b;
  ASSERT_TRUE(reader.Next(&b));
  ASSERT_EQ(b.size, 2);
  EXPECT_EQ(b.labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(b.dense, (std::vector<float>{std::log1p(3.0f), std::log1p(9.0f)}));
  EXPECT_EQ(b.tables[0].keys, (std::vector<uint64_t>{FeatureKey(0, "paris"), FeatureKey(0, "")}));
  EXPECT_TRUE(b.tables[0].fixed);
  EXPECT_EQ(b.tables[1].keys,
            (std::vector<uint64_t>{FeatureKey(1, "a"), FeatureKey(1, "b"), FeatureKey(1, "")}));
  EXPECT_EQ(b.tables[1].splits, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_FALSE(reader.Next(&b));
  EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
  EXPECT_EQ(reader.rows(), 2) << "the header is no row";

  // A header that does not match the spec is refused, naming the column.
  WriteFile(path, "id\tcost\tclicked\tcity\ttags\nu1\t1\t1\tparis\ta\n");
  BatchReader wrong(o);
  ASSERT_TRUE(wrong.Start().ok());
  EXPECT_FALSE(wrong.Next(&b));
  EXPECT_THAT(wrong.status().message(), HasSubstr("data.tsv:1: the header does not match"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("column 2 is 'cost', the spec says 'price'"));
}

}  // namespace
}  // namespace deepfm

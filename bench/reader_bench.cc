// Reader throughput: rows/s of BatchReader alone (reader thread + a consumer
// that only takes batches) on a file of any feature spec, and of the
// synchronous parser on the file's bytes in memory, in rows and keys per
// second. Prints figures; not a test.
//   reader_bench --file=data/train.csv [--feature_spec=elm]
//   (pin with taskset -c 0 for "one core")
#include <gflags/gflags.h>

#include <cstdio>

#include "common/checkpoint_manifest.h"
#include "common/timing.h"
#include "worker/data_reader.h"

DEFINE_string(file, "data/train.csv", "CSV or TSV file to read");
DEFINE_int32(repeats, 3, "measurements; the best is reported too");
DEFINE_string(feature_spec, "auto", "preset or spec file; auto: by the file's column count");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  deepfm::ReaderOptions o;
  o.files = {FLAGS_file};
  deepfm::Status st = deepfm::ResolveFeatureSpec(FLAGS_feature_spec, FLAGS_file, &o.spec);
  if (!st.ok()) {
    fprintf(stderr, "reader_bench: %s\n", st.message().c_str());
    return 1;
  }
  double best = 0;
  for (int i = 0; i < FLAGS_repeats; ++i) {
    double rps = 0;
    int64_t rows = 0;
    deepfm::Status s = deepfm::BatchReader::MeasureRowsPerSecond(o, &rps, &rows);
    if (!s.ok()) {
      fprintf(stderr, "reader_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    printf("BatchReader: %lld rows, %.2f M rows/s\n", static_cast<long long>(rows), rps / 1e6);
    best = std::max(best, rps);
  }
  std::string text;
  deepfm::Status s = deepfm::ReadFile(FLAGS_file, &text);
  if (!s.ok()) {
    fprintf(stderr, "reader_bench: %s\n", s.message().c_str());
    return 1;
  }
  const char sep = o.spec->separator() != 0 ? o.spec->separator()
                   : text.find('\t') < text.find('\n') ? '\t' : ',';
  deepfm::Batch batch;
  deepfm::Stopwatch sw;
  const int64_t bad = deepfm::ParseText(*o.spec, text, sep, &batch);
  const double secs = sw.Seconds();
  size_t keys = 0;
  for (const deepfm::TableKeys& t : batch.tables) keys += t.keys.size();
  printf("ParseText (in memory, one thread, spec %s): %d rows, %lld bad, %.2f M rows/s, %.0f MB/s, "
         "%.1f keys/row, %.1f M keys/s\n",
         o.spec->name().c_str(), batch.size, static_cast<long long>(bad), batch.size / secs / 1e6,
         text.size() / secs / 1e6, double(keys) / std::max(1, batch.size), keys / secs / 1e6);
  printf("BatchReader best: %.2f M rows/s\n", best / 1e6);
  return 0;
}

#include "serving/batch_predict.h"

#include <oneapi/tbb/concurrent_queue.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "common/timing.h"
#include "worker/data_reader.h"
#include "worker/metrics.h"

namespace deepfm::serving {

namespace {

// One batch in flight through the pipeline: parsed rows, then their scores.
struct Item {
  Batch batch;
  std::vector<float> probs;
};

// Appends the batch's scores to `out` and its labeled rows to `acc`.
Status Emit(const Item& item, FILE* out, EvalAccumulator* acc, int64_t* labeled) {
  const int n = item.batch.size;
  const float* labels = item.batch.labels.data();
  int have = 0;
  for (int i = 0; i < n; ++i) have += std::isnan(labels[i]) ? 0 : 1;
  if (have == n) {
    acc->Add(item.probs.data(), labels, n);
  } else {
    for (int i = 0; i < n; ++i) {
      if (!std::isnan(labels[i])) acc->Add(&item.probs[i], &labels[i], 1);
    }
  }
  *labeled += have;
  if (out == nullptr) return Status::Ok();
  char line[32];
  for (int i = 0; i < n; ++i) {
    const int len = snprintf(line, sizeof(line), "%.9g\n", item.probs[i]);
    if (fwrite(line, 1, len, out) != static_cast<size_t>(len)) {
      return Internal("writing the scores failed (disk full?)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status BatchPredict(const PredictOptions& o, PredictResult* result) {
  *result = PredictResult();
  Stopwatch wall;
  std::shared_ptr<const ServingModel> model;
  Status s = ServingModel::Load(o.model, o.model_options, &model);
  if (!s.ok()) return s;
  if (o.files.empty()) return InvalidArgument("--data_location: no data files to score");
  if (o.batch_size < 1) return InvalidArgument("--batch_size must be >= 1");
  const int threads = o.threads > 0 ? o.threads : tbb::info::default_concurrency();

  ReaderOptions ro;
  ro.files = o.files;
  ro.spec = model->spec();
  ro.batch_size = o.batch_size;
  ro.max_bad_fraction = o.max_bad_fraction;
  ro.strict = o.strict;
  ro.label_optional = true;
  ro.queue_capacity = 2 * threads;
  BatchReader reader(ro);
  s = reader.Start();
  if (!s.ok()) return s;

  FILE* out = nullptr;
  const std::string tmp = o.out + ".tmp";
  if (!o.out.empty()) {
    out = fopen(tmp.c_str(), "w");
    if (out == nullptr) return InvalidArgument("--out=" + o.out + ": cannot create " + tmp);
  }
  // Batches circulate through a fixed pool: reader -> scoring (parallel)
  // -> writer (in input order) -> pool.
  const size_t tokens = 2 * static_cast<size_t>(threads);
  std::vector<std::unique_ptr<Item>> items;
  tbb::concurrent_queue<Item*> free_items;
  for (size_t i = 0; i < tokens; ++i) {
    items.push_back(std::make_unique<Item>());
    free_items.push(items.back().get());
  }
  tbb::enumerable_thread_specific<std::unique_ptr<Scorer>> scorers;
  EvalAccumulator acc;
  int64_t labeled = 0, rows = 0;
  Status write_status;
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        tokens,
        tbb::make_filter<void, Item*>(tbb::filter_mode::serial_in_order,
                                      [&](tbb::flow_control& fc) -> Item* {
                                        Item* item = nullptr;
                                        if (!free_items.try_pop(item) ||
                                            !reader.Next(&item->batch)) {
                                          if (item) free_items.push(item);
                                          fc.stop();
                                          return nullptr;
                                        }
                                        return item;
                                      }) &
            tbb::make_filter<Item*, Item*>(tbb::filter_mode::parallel,
                                           [&](Item* item) {
                                             std::unique_ptr<Scorer>& scorer = scorers.local();
                                             if (!scorer) scorer = std::make_unique<Scorer>(model);
                                             item->probs.resize(item->batch.size);
                                             scorer->Score(item->batch, item->probs.data());
                                             return item;
                                           }) &
            tbb::make_filter<Item*, void>(tbb::filter_mode::serial_in_order, [&](Item* item) {
              if (write_status.ok()) write_status = Emit(*item, out, &acc, &labeled);
              rows += item->batch.size;
              free_items.push(item);
            }));
  });
  if (out != nullptr) {
    if (fclose(out) != 0 && write_status.ok())
      write_status = Internal("closing " + tmp + " failed");
  }
  s = reader.status();
  if (s.ok()) s = write_status;
  if (!s.ok()) {
    if (!o.out.empty()) std::remove(tmp.c_str());
    return s;
  }
  if (!o.out.empty() && std::rename(tmp.c_str(), o.out.c_str()) != 0) {
    return Internal("cannot rename " + tmp + " to " + o.out);
  }
  result->rows = rows;
  result->labeled_rows = labeled;
  result->bad_lines = reader.bad_lines();
  if (labeled > 0) {
    result->auc = acc.Auc();
    result->logloss = acc.LogLoss();
    result->accuracy = acc.Accuracy();
  }
  result->seconds = wall.Seconds();
  result->threads = threads;
  result->model_version = model->version();
  result->model_path = model->path();
  return Status::Ok();
}

}  // namespace deepfm::serving

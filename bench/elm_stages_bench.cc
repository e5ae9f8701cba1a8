// Each stage of a training step alone, on real batches of a data file read
// by its feature spec (the elm preset's ~400 keys a row is the point): the
// parse, the per-table de-duplication, the pull and the push through a
// PsClient to an in-process shard (the client's encoding and the shard's
// lookup and optimizer, no RPC), the pooling forward and backward, and the
// network's forward and backward. Prints microseconds per step and keys per
// second per stage; not a test.
//   elm_stages_bench --file=bench_data/elm/train.csv [--feature_spec=elm] [--steps=100]
#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/timing.h"
#include "launcher/in_process_shards.h"
#include "ps/shard.h"
#include "worker/data_reader.h"
#include "worker/deepfm_model.h"
#include "worker/key_dedup.h"
#include "worker/pooling.h"
#include "worker/ps_client.h"

DEFINE_string(file, "bench_data/elm/train.csv", "data file");
DEFINE_string(feature_spec, "auto", "preset or spec file; auto: by the file's column count");
DEFINE_int32(steps, 100, "batches timed per stage");
DEFINE_int32(batch_size, 512, "rows per batch");
DEFINE_string(hidden_units, "", "DNN widths (default: the spec's)");

namespace deepfm {
namespace {

struct StepData {
  Batch batch;
  std::vector<std::vector<uint64_t>> uniq;
  std::vector<std::vector<int32_t>> inverse;
  std::vector<std::vector<float>> rows, grads;
  size_t keys = 0, num_uniq = 0;
};

void Report(const char* stage, double seconds, int steps, double keys) {
  printf("%-26s %9.0f us/step %9.2f M keys/s\n", stage, seconds * 1e6 / steps,
         keys / seconds / 1e6);
}

int Main() {
  FeatureSpecPtr spec;
  Status s = ResolveFeatureSpec(FLAGS_feature_spec, FLAGS_file, &spec);
  if (!s.ok()) {
    fprintf(stderr, "elm_stages_bench: %s\n", s.message().c_str());
    return 1;
  }
  std::string text;
  s = ReadFile(FLAGS_file, &text);
  if (!s.ok()) {
    fprintf(stderr, "elm_stages_bench: %s\n", s.message().c_str());
    return 1;
  }
  // The file's first steps * batch_size lines.
  const char sep = spec->separator() != 0 ? spec->separator()
                   : text.find('\t') < text.find('\n') ? '\t' : ',';
  size_t cut = 0;
  for (int64_t n = 0; n < int64_t(FLAGS_steps) * FLAGS_batch_size && cut < text.size(); ++n) {
    cut = text.find('\n', cut);
    cut = cut == std::string::npos ? text.size() : cut + 1;
  }
  text.resize(cut);
  // The batches' lines, as the reader thread sees them.
  std::vector<std::string_view> batch_text;
  {
    std::string_view rest(text);
    while (true) {
      size_t end = 0;
      int r = 0;
      for (; r < FLAGS_batch_size && end < rest.size(); ++r) {
        const size_t nl = rest.find('\n', end);
        end = nl == std::string_view::npos ? rest.size() : nl + 1;
      }
      if (r < FLAGS_batch_size) break;
      batch_text.push_back(rest.substr(0, end));
      rest.remove_prefix(end);
    }
  }
  const int steps = static_cast<int>(batch_text.size());
  if (steps == 0) {
    fprintf(stderr, "elm_stages_bench: fewer than one batch of rows in %s\n", FLAGS_file.c_str());
    return 1;
  }
  // Parse into one reused batch, as the reader does (its buffers grown by a
  // first pass), then into the batches the other stages use.
  std::vector<StepData> data(steps);
  Batch reused;
  double parse_s = 0, keys = 0;
  for (int pass = 0; pass < 2; ++pass) {
    Stopwatch watch;
    for (std::string_view t : batch_text) {
      reused.size = 0;
      ParseText(*spec, t, sep, &reused);
    }
    parse_s = watch.Seconds();
  }
  for (int i = 0; i < steps; ++i) {
    ParseText(*spec, batch_text[i], sep, &data[i].batch);
    for (const TableKeys& t : data[i].batch.tables) keys += t.keys.size();
  }
  printf("spec %s: %d steps of %d rows, %.1f keys/row, %.0f bytes/row, %zu tables, %d features\n",
         spec->name().c_str(), steps, FLAGS_batch_size, keys / (double(steps) * FLAGS_batch_size),
         double(text.size()) / (double(steps) * FLAGS_batch_size), spec->tables().size(),
         spec->num_features());
  Report("parse (reader thread)", parse_s, steps, keys);
  const int W = spec->embedding_dim() + 1;
  KeyDedup dedup;
  double uniq = 0, dedup_s = 0;
  for (int pass = 0; pass < 2; ++pass) {
    Stopwatch watch;
    uniq = 0;
    for (StepData& d : data) {
      d.uniq.resize(d.batch.tables.size());
      d.inverse.resize(d.batch.tables.size());
      d.num_uniq = 0;
      for (size_t t = 0; t < d.batch.tables.size(); ++t) {
        dedup.Run(d.batch.tables[t].keys.data(), d.batch.tables[t].keys.size(), &d.uniq[t],
                  &d.inverse[t]);
        d.num_uniq += d.uniq[t].size();
      }
      uniq += d.num_uniq;
    }
    dedup_s = watch.Seconds();
  }
  Report("dedup", dedup_s, steps, keys);
  printf("%-26s %9.0f unique keys/step (%.1f %% of the keys)\n", "", uniq / steps, 100 * uniq / keys);

  // Pull and push through the client to an in-process shard.
  ps::ShardOptions so;
  so.optimizer.type = ps::OptimizerType::kAdamAsync;
  std::unique_ptr<ps::Shard> shard = ps::Shard::Create(so, &s);
  std::vector<std::unique_ptr<ShardEndpoint>> endpoints;
  endpoints.push_back(launcher::InProcessShardEndpoint(shard.get(), ""));
  PsClientOptions co;
  co.hosts = {"in-process"};
  std::unique_ptr<PsClient> client;
  s = PsClient::Attach(co, std::move(endpoints), &client);
  if (!s.ok()) {
    fprintf(stderr, "elm_stages_bench: %s\n", s.message().c_str());
    return 1;
  }
  std::vector<int> handles;
  for (const FeatureSpec::TableInfo& t : spec->tables()) {
    ps::TableSpec ts;
    ts.set_name(t.name);
    ts.set_dim(W);
    ts.set_init_stddev(0.01f);
    int h;
    client->RegisterTable(ts, &h);
    handles.push_back(h);
  }
  auto parts = [&](StepData& d, bool grads) {
    std::vector<PsClient::SparsePart> p(handles.size());
    for (size_t t = 0; t < handles.size(); ++t) {
      p[t].table = handles[t];
      p[t].keys = d.uniq[t].data();
      p[t].n = d.uniq[t].size();
      d.rows[t].resize(d.uniq[t].size() * W);
      d.grads[t].resize(d.uniq[t].size() * W, 1e-3f);
      p[t].rows = d.rows[t].data();
      p[t].grads = d.grads[t].data();
    }
    return p;
  };
  for (StepData& d : data) {
    d.rows.resize(handles.size());
    d.grads.resize(handles.size());
  }
  // A first pass creates the rows, as the first epoch's steps do.
  for (StepData& d : data) client->Pull(parts(d, false), {}, false, nullptr);
  Stopwatch watch;
  for (StepData& d : data) client->Pull(parts(d, false), {}, false, nullptr);
  Report("pull (client + shard)", watch.Seconds(), steps, uniq);
  watch.Reset();
  int64_t step = 0;
  for (StepData& d : data) client->Push(parts(d, true), {}, true, &step);
  Report("push (client + shard)", watch.Seconds(), steps, uniq);

  // Pooling and the network.
  DeepFMConfig config;
  config.num_fields = spec->num_features();
  config.num_dense = spec->num_numeric();
  config.embedding_dim = spec->embedding_dim();
  config.hidden_units = spec->hidden_units();
  if (!FLAGS_hidden_units.empty()) {
    config.hidden_units.clear();
    for (size_t p = 0; p < FLAGS_hidden_units.size();) {
      size_t q = FLAGS_hidden_units.find(',', p);
      if (q == std::string::npos) q = FLAGS_hidden_units.size();
      config.hidden_units.push_back(std::stoi(FLAGS_hidden_units.substr(p, q - p)));
      p = q + 1;
    }
  }
  DeepFMModel model(config);
  model.InitDense(1);
  Pooling pooling(*spec, W);
  std::vector<TableRows<float>> rows(handles.size());
  auto table_rows = [&](StepData& d) {
    for (size_t t = 0; t < handles.size(); ++t) rows[t] = {d.rows[t].data(), d.inverse[t].data()};
  };
  double pool_s = 0, net_s = 0, back_s = 0;
  for (StepData& d : data) {
    table_rows(d);
    Stopwatch sw;
    pooling.Forward(d.batch, rows, model.BeginBatch(d.batch.size));
    pool_s += sw.Seconds();
    sw.Reset();
    model.ForwardBackwardFilled(d.batch.size, d.batch.dense.data(), d.batch.labels.data());
    net_s += sw.Seconds();
    sw.Reset();
    std::vector<float*> g(handles.size());
    std::vector<size_t> nu(handles.size());
    for (size_t t = 0; t < handles.size(); ++t) {
      g[t] = d.grads[t].data();
      nu[t] = d.uniq[t].size();
    }
    const PooledLayout<float> grad = model.Gradients();
    pooling.Backward(d.batch, rows, {grad.e, grad.e_row, grad.e_feature, grad.w, grad.w_row, grad.w_feature},
                     g, nu);
    back_s += sw.Seconds();
  }
  Report("pool forward", pool_s, steps, keys);
  Report("pool backward", back_s, steps, keys);
  Report("network fwd+bwd", net_s, steps, FLAGS_batch_size * double(steps));
  printf("%-26s (last column: M rows/s)\n", "");
  return 0;
}

}  // namespace
}  // namespace deepfm

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return deepfm::Main();
}

// Exports for the serving tests, made in-process without a training job: a
// network initialised from a seed and rows for the keys of a data file,
// written as a real export (version folder and model.dfm) would be.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/random.h"
#include "serving/export_format.h"
#include "spec/feature_spec.h"
#include "worker/data_reader.h"
#include "worker/deepfm_model.h"
#include "tests/support/slurp.h"
#include "worker/model_config.h"

namespace deepfm::serving::testing {

inline std::string ReadAll(const std::string& path) { return testing_util::Slurp(path); }

inline std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(ReadAll(path));
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Writes root/<version>/model.dfm for `spec`, its network's weights drawn
// from `seed`, a row for every key of `data_file` (half of them, when
// `half_rows`: the rest read their initial rows).
inline std::string MakeExport(const FeatureSpecPtr& spec, const std::string& data_file,
                              const std::filesystem::path& root, int64_t version, uint64_t seed,
                              bool half_rows = false) {
  DeepFMConfig base;
  base.hidden_units =
      spec->hidden_units().empty() ? std::vector<int>{32, 16} : spec->hidden_units();
  const DeepFMConfig config = ModelConfigFor(*spec, base);
  DeepFMModel model(config);
  model.InitDense(seed);
  ExportContents c;
  ExportMeta& m = c.meta;
  m.set_feature_spec(spec->Text());
  for (int u : config.hidden_units) m.add_hidden_units(u);
  m.set_global_step(version);
  m.set_source_checkpoint("ckpt-" + std::to_string(version));
  m.set_optimizer("adamasync");
  for (const DenseTensor& d : model.dense()) {
    ExportDense* e = m.add_dense();
    e->set_name(d.name);
    for (int64_t s : d.shape) e->add_shape(s);
    std::vector<float> v = d.values;
    // Moving statistics away from their initial 0 and 1, so batch norm's
    // predicting path is exercised.
    if (d.name.find("moving_mean") != std::string::npos) {
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01f * static_cast<float>(i % 7);
    }
    c.dense.push_back(v);
  }
  Batch batch;
  batch.Shape(*spec);
  ParseText(*spec, ReadAll(data_file), spec->separator() ? spec->separator() : ',', &batch);
  const int width = config.row_width();
  for (size_t t = 0; t < spec->tables().size(); ++t) {
    std::vector<uint64_t> keys = batch.tables[t].keys;
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    ExportTableData d;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (half_rows && i % 2 == 1) continue;
      d.keys.push_back(keys[i]);
      std::vector<float> row(width);
      InitRowNormal(keys[i], seed * 31 + t, 0.2f, row.data(), width);
      d.values.insert(d.values.end(), row.begin(), row.end());
    }
    ExportTable* e = m.add_tables();
    e->set_name(spec->tables()[t].name);
    e->set_width(width);
    e->set_seed(seed);
    e->set_init_stddev(0.05f);
    e->set_rows(d.keys.size());
    c.tables.push_back(std::move(d));
  }
  const std::filesystem::path dir = root / std::to_string(version);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / kExportFileName).string();
  const Status s = WriteExportFile(path, c);
  if (!s.ok()) return "";
  return dir.string();
}

}  // namespace deepfm::serving::testing

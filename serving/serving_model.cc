#include "serving/serving_model.h"

#include <filesystem>

#include "common/bf16.h"
#include "worker/model_config.h"

namespace deepfm::serving {

namespace fs = std::filesystem;

namespace {

bool ParseVersion(const std::string& name, int64_t* version) {
  if (name.empty() || name.size() > 18) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  *version = std::stoll(name);
  return true;
}

}  // namespace

Status FindNewestExport(const std::string& root, std::string* version_dir, int64_t* version) {
  std::error_code ec;
  int64_t best = -1;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    int64_t v = -1;
    if (!entry.is_directory() || !ParseVersion(entry.path().filename().string(), &v)) continue;
    if (v > best && fs::exists(entry.path() / kExportFileName)) {
      best = v;
      *version_dir = entry.path().string();
    }
  }
  if (ec) return NotFound("cannot list " + root + ": " + ec.message());
  if (best < 0) {
    return NotFound(root + " holds no export: expected numbered version folders with a " +
                    std::string(kExportFileName) + " (deepfm export --out=" + root + ")");
  }
  *version = best;
  return Status::Ok();
}

Status ServingModel::Load(const std::string& path, const ModelOptions& options,
                          std::shared_ptr<const ServingModel>* out) {
  std::string file = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / kExportFileName)) {
      file = (fs::path(path) / kExportFileName).string();
    } else {
      std::string dir;
      int64_t version;
      Status s = FindNewestExport(path, &dir, &version);
      if (!s.ok()) return s;
      file = (fs::path(dir) / kExportFileName).string();
    }
  }
  std::shared_ptr<ServingModel> m(new ServingModel());
  Status s = ExportFile::Open(file, &m->file_);
  if (!s.ok()) return s;
  const ExportMeta& meta = m->file_->meta();
  s = FeatureSpec::Parse(meta.feature_spec(), file + " (its feature spec)", &m->spec_);
  if (!s.ok()) return DataLoss("export " + file + ": " + s.message());
  const FeatureSpec& spec = *m->spec_;
  if (static_cast<size_t>(meta.tables_size()) != spec.tables().size()) {
    return FailedPrecondition("export " + file + " has " + std::to_string(meta.tables_size()) +
                              " tables, its spec " + std::to_string(spec.tables().size()));
  }
  for (size_t t = 0; t < spec.tables().size(); ++t) {
    if (meta.tables(t).name() != spec.tables()[t].name ||
        static_cast<int>(meta.tables(t).width()) != spec.tables()[t].dim + 1) {
      return FailedPrecondition("export " + file + ": table " + std::to_string(t) + " ('" +
                                meta.tables(t).name() + "') does not match its spec's");
    }
  }
  DeepFMConfig base;
  base.hidden_units.assign(meta.hidden_units().begin(), meta.hidden_units().end());
  base.bf16 = options.bf16 < 0 ? meta.trained_bf16() : options.bf16 == 1;
  base.dnn_isa = options.dnn_isa;
  base.dnn_threads = 1;
  m->config_ = ModelConfigFor(spec, base);
  // The network's tensors, each found in the file by name with its shape.
  for (const DenseTensorSpec& d : DeepFMDenseSpecs(m->config_)) {
    int found = -1;
    for (int i = 0; i < meta.dense_size(); ++i) {
      if (meta.dense(i).name() == d.name) found = i;
    }
    if (found < 0) {
      return FailedPrecondition("export " + file + " lacks the dense variable " + d.name +
                                " its network needs");
    }
    const ExportDense& e = meta.dense(found);
    if (std::vector<int64_t>(e.shape().begin(), e.shape().end()) != d.shape) {
      return FailedPrecondition("export " + file + ": dense variable " + d.name +
                                " has another shape than its network's");
    }
    m->dense_order_.push_back(found);
  }
  *out = std::move(m);
  return Status::Ok();
}

Scorer::Scorer(std::shared_ptr<const ServingModel> model)
    : model_(std::move(model)),
      net_(model_->config()),
      pooling_(*model_->spec(), model_->config().row_width(), net_.kernels()),
      tables_(model_->spec()->tables().size()),
      table_rows_(tables_.size()) {
  for (size_t d = 0; d < net_.dense().size(); ++d) {
    std::vector<float>& values = net_.dense()[d].values;
    const float* src = model_->file().dense(model_->dense_order_[d]);
    std::copy(src, src + values.size(), values.begin());
    // A bf16 job's trainer reads every value through bf16 on the wire.
    if (net_.config().bf16) RoundToBf16(values.data(), values.size());
  }
}

void Scorer::Score(const Batch& batch, float* probs) {
  const auto& files = model_->file().tables();
  for (size_t t = 0; t < tables_.size(); ++t) {
    TableBuffers& tb = tables_[t];
    const TableKeys& keys = batch.tables[t];
    dedup_.Run(keys.keys.data(), keys.keys.size(), &tb.uniq, &tb.inverse);
    const ExportFile::Table& table = files[t];
    tb.rows.resize(tb.uniq.size() * table.width);
    for (size_t u = 0; u < tb.uniq.size(); ++u)
      table.Lookup(tb.uniq[u], tb.rows.data() + u * table.width);
    if (net_.config().bf16 && !table.bf16) RoundToBf16(tb.rows.data(), tb.rows.size());
    table_rows_[t].rows = tb.rows.data();
    table_rows_[t].inverse = tb.inverse.data();
  }
  pooling_.Forward(batch, table_rows_, net_.BeginBatch(DeepFMModel::PredictRows(batch.size)));
  net_.PredictRowsFilled(batch.size, batch.dense.data(), probs);
}

}  // namespace deepfm::serving

#include "serving/exporter.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <numeric>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "common/timing.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/shard.h"
#include "serving/export_format.h"
#include "spec/feature_spec.h"
#include "worker/checkpointer.h"

namespace deepfm::serving {

namespace {

namespace fs = std::filesystem;

// The checkpoint folder to export: --restore_checkpoint's, else the latest.
Status ResolveSource(const ExportOptions& o, std::string* folder) {
  if (o.checkpoint_dir.empty())
    return InvalidArgument("--checkpoint: name the job folder to export from");
  if (!o.restore_checkpoint.empty()) {
    int64_t step;
    if (!ParseCheckpointFolderName(o.restore_checkpoint, &step)) {
      return InvalidArgument("--restore_checkpoint=" + o.restore_checkpoint +
                             ": expected a checkpoint folder name, ckpt-<step>");
    }
    *folder = (fs::path(o.checkpoint_dir) / o.restore_checkpoint).string();
    return Status::Ok();
  }
  Status s = LatestCheckpoint(o.checkpoint_dir, folder);
  if (!s.ok()) return Status(s.code(), "export: " + s.message());
  return Status::Ok();
}

// The job's spec: its folder's copy, else --feature_spec; either must be the
// one the checkpoint was trained under.
Status LoadSpec(const ExportOptions& o, const Manifest& manifest, FeatureSpecPtr* spec) {
  const std::string copy = (fs::path(o.checkpoint_dir) / kFeatureSpecCopy).string();
  Status s;
  std::string origin;
  if (fs::exists(copy)) {
    s = FeatureSpec::Load(copy, spec);
    origin = copy;
  } else {
    const std::string flag = o.feature_spec == "auto" ? "criteo" : o.feature_spec;
    s = FeatureSpec::Load(flag, spec);
    origin = "--feature_spec=" + flag;
  }
  if (!s.ok()) return s;
  if (!manifest.feature_spec.empty() && manifest.feature_spec != (*spec)->fingerprint()) {
    return FailedPrecondition("the checkpoint was trained under feature spec " +
                              manifest.feature_spec + ", " + origin + " is " +
                              (*spec)->fingerprint() + ": give the job's spec with --feature_spec");
  }
  return Status::Ok();
}

// A flag of the job as job.json recorded it; empty when it has none.
std::string JobFlag(const std::string& job_dir, const std::string& name) {
  JobInfo info;
  if (!ReadJobInfo((fs::path(job_dir) / "job.json").string(), &info).ok()) return "";
  auto it = info.flags.find(name);
  return it == info.flags.end() ? "" : it->second;
}

// hidden_units from the dense variables: dnn/layer<i>/kernel is [in, out].
std::vector<int> HiddenUnits(const ExportMeta& meta) {
  std::vector<int> units;
  for (int i = 0;; ++i) {
    const std::string name = "dnn/layer" + std::to_string(i) + "/kernel";
    auto it = std::find_if(meta.dense().begin(), meta.dense().end(),
                           [&](const ExportDense& d) { return d.name() == name; });
    if (it == meta.dense().end() || it->shape_size() != 2) break;
    units.push_back(static_cast<int>(it->shape(1)));
  }
  return units;
}

// The checkpoint's bytes: every shard file of every link of its chain.
uint64_t CheckpointBytes(const std::string& folder) {
  std::vector<ChainLink> chain;
  if (!ReadCheckpointChain(folder, /*verify=*/false, &chain).ok()) return 0;
  uint64_t bytes = 0;
  for (const ChainLink& link : chain) {
    for (const CheckpointFile& f : link.manifest.files) bytes += f.bytes;
  }
  return bytes;
}

}  // namespace

Status ExportCheckpoint(const ExportOptions& o, ExportSummary* summary) {
  *summary = ExportSummary();
  Stopwatch wall;
  if (o.out_dir.empty()) return InvalidArgument("--out: name the folder exports go to");
  std::string folder;
  Status s = ResolveSource(o, &folder);
  if (!s.ok()) return s;
  Manifest manifest;
  s = ReadAndVerifyManifest(folder, &manifest);
  if (!s.ok()) return s;
  FeatureSpecPtr spec;
  s = LoadSpec(o, manifest, &spec);
  if (!s.ok()) return s;

  // One shard owning every slot restores any shard count; the optimizer and
  // slot count must be the checkpoint's for RestoreShard to accept it.
  ps::ShardOptions so;
  so.num_slots = manifest.num_slots;
  so.background_sweeps = false;
  s = ps::ParseOptimizerType(manifest.optimizer, &so.optimizer.type);
  if (!s.ok()) return s;
  std::unique_ptr<ps::Shard> shard = ps::Shard::Create(so, &s);
  if (!s.ok()) return s;
  uint64_t restored_rows = 0;
  s = ps::RestoreShard(&shard, folder, &restored_rows);
  if (!s.ok()) return s;

  ExportContents c;
  ExportMeta& meta = c.meta;
  meta.set_feature_spec(spec->Text());
  meta.set_global_step(manifest.global_step);
  meta.set_source_checkpoint(fs::path(folder).filename().string());
  meta.set_optimizer(manifest.optimizer);
  meta.set_value_type(o.bf16_values ? ExportMeta::BF16 : ExportMeta::FP32);
  meta.set_min_frequency(o.min_frequency);
  meta.set_trained_bf16(o.trained_bf16 >= 0 ? o.trained_bf16 == 1
                                            : JobFlag(o.checkpoint_dir, "bf16") == "true");
  int64_t steps_to_live = o.steps_to_live;
  if (steps_to_live < 0) {
    const std::string flag = JobFlag(o.checkpoint_dir, "ev_steps_to_live");
    steps_to_live = flag.empty() ? 0 : std::strtoll(flag.c_str(), nullptr, 10);
  }
  // The shards' rule (EmbeddingTable::Expired) at the checkpoint's step.
  const uint32_t step32 = static_cast<uint32_t>(manifest.global_step);
  auto expired = [&](const ps::RowMeta& m) {
    return steps_to_live > 0 && static_cast<int32_t>(step32 - m.last_step) > steps_to_live;
  };

  // Tables in the spec's order, whatever order the checkpoint holds them in.
  for (const FeatureSpec::TableInfo& ti : spec->tables()) {
    const ps::EmbeddingTable* table = nullptr;
    for (const ps::EmbeddingTable* t : shard->tables()) {
      if (t->options().name == ti.name) table = t;
    }
    if (table == nullptr) {
      return FailedPrecondition("the checkpoint " + folder + " has no table '" + ti.name +
                                "' of the feature spec");
    }
    const int width = table->options().dim;
    if (width != ti.dim + 1) {
      return FailedPrecondition("table '" + ti.name + "' holds rows of " + std::to_string(width) +
                                " floats, the spec's dimension " + std::to_string(ti.dim) +
                                " needs " + std::to_string(ti.dim + 1));
    }
    std::vector<std::pair<uint64_t, const float*>> rows;
    uint64_t dropped = 0, dead = 0;
    table->ForEachRow([&](uint64_t key, const float* values, const float*, ps::RowMeta m) {
      if (expired(m)) {
        ++dead;
        return;
      }
      if (o.min_frequency > 1 && m.frequency < o.min_frequency) {
        ++dropped;
        return;
      }
      rows.emplace_back(key, values);
    });
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    ExportTableData d;
    d.keys.reserve(rows.size());
    d.values.resize(rows.size() * width);
    for (size_t i = 0; i < rows.size(); ++i) {
      d.keys.push_back(rows[i].first);
      std::copy(rows[i].second, rows[i].second + width, d.values.begin() + i * width);
    }
    ExportTable* tm = meta.add_tables();
    tm->set_name(ti.name);
    tm->set_width(width);
    tm->set_seed(table->options().seed);
    tm->set_init_stddev(table->options().init_stddev);
    tm->set_rows(d.keys.size());
    tm->set_dropped_rows(dropped);
    tm->set_expired_rows(dead);
    c.tables.push_back(std::move(d));
  }
  ps::DenseStore& dense = shard->dense();
  for (uint32_t id = 0; id < dense.num_variables(); ++id) {
    const ps::DenseVariable* v = dense.Get(id);
    ExportDense* dm = meta.add_dense();
    dm->set_name(v->name);
    for (int64_t dim : v->shape) dm->add_shape(dim);
    std::vector<float> values(dense.NumElements(id));
    s = dense.Pull(id, values.data());
    if (!s.ok()) return s;
    c.dense.push_back(std::move(values));
  }
  for (int u : HiddenUnits(meta)) meta.add_hidden_units(u);
  if (meta.hidden_units_size() == 0) {
    return FailedPrecondition("the checkpoint " + folder +
                              " holds no dnn/layer0/kernel: not a DeepFM job");
  }

  // The version folder appears whole: written as .<step>.tmp, then renamed.
  const std::string version = std::to_string(manifest.global_step);
  const fs::path final_dir = fs::path(o.out_dir) / version;
  const fs::path tmp_dir = fs::path(o.out_dir) / ("." + version + ".tmp");
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    return Status(Code::kAlreadyExists, final_dir.string() + " exists: the export of step " +
                                            version +
                                            " was made already (remove it to export again)");
  }
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  if (ec) return Internal("cannot create " + tmp_dir.string() + ": " + ec.message());
  ExportFileStats stats;
  s = WriteExportFile((tmp_dir / kExportFileName).string(), c, &stats);
  if (!s.ok()) {
    fs::remove_all(tmp_dir, ec);
    return s;
  }
  // Read back as a server would before it is published.
  std::unique_ptr<const ExportFile> check;
  s = ExportFile::Open((tmp_dir / kExportFileName).string(), &check);
  if (!s.ok()) return s;
  check.reset();
  fs::rename(tmp_dir, final_dir, ec);
  if (ec)
    return Internal("cannot rename " + tmp_dir.string() + " to " + final_dir.string() + ": " +
                    ec.message());

  summary->version_dir = final_dir.string();
  summary->file = (final_dir / kExportFileName).string();
  summary->source = folder;
  summary->global_step = manifest.global_step;
  summary->source_shards = manifest.num_shards;
  summary->checkpoint_bytes = CheckpointBytes(folder);
  summary->checkpoint_rows = restored_rows;
  summary->file_bytes = stats.bytes;
  summary->dense_bytes = stats.dense_bytes;
  summary->bf16_values = o.bf16_values;
  summary->min_frequency = o.min_frequency;
  summary->trained_bf16 = meta.trained_bf16();
  for (int t = 0; t < meta.tables_size(); ++t) {
    ExportTableSummary ts;
    ts.name = meta.tables(t).name();
    ts.rows = meta.tables(t).rows();
    ts.dropped_rows = meta.tables(t).dropped_rows();
    ts.expired_rows = meta.tables(t).expired_rows();
    ts.bytes = stats.table_bytes[t];
    ts.width = static_cast<int>(meta.tables(t).width());
    ts.fp32_value_bytes = ts.rows * ts.width * sizeof(float);
    summary->tables.push_back(ts);
  }
  summary->seconds = wall.Seconds();
  return Status::Ok();
}

std::string DescribeExport(const ExportSummary& e) {
  std::string out;
  char line[512];
  snprintf(line, sizeof(line), "exported %s (step %" PRId64 ", %u shard file(s)) to %s in %.1f s\n",
           e.source.c_str(), e.global_step, e.source_shards, e.file.c_str(), e.seconds);
  out += line;
  uint64_t rows = 0, dropped = 0, expired = 0, fp32 = 0, stored = 0;
  for (const ExportTableSummary& t : e.tables) {
    const uint64_t values = t.rows * t.width * (e.bf16_values ? 2 : 4);
    snprintf(
        line, sizeof(line), "  table %-24s %10" PRIu64 " rows %12" PRIu64 " bytes%s\n",
        t.name.c_str(), t.rows, t.bytes,
        t.dropped_rows ? (" (" + std::to_string(t.dropped_rows) + " rows dropped)").c_str() : "");
    out += line;
    rows += t.rows;
    dropped += t.dropped_rows;
    expired += t.expired_rows;
    fp32 += t.fp32_value_bytes;
    stored += values;
  }
  snprintf(line, sizeof(line),
           "  dense variables %" PRIu64 " bytes; file %" PRIu64 " bytes, %" PRIu64 " rows\n",
           e.dense_bytes, e.file_bytes, rows);
  out += line;
  if (e.min_frequency > 1) {
    snprintf(line, sizeof(line),
             "  --min_frequency=%u dropped %" PRIu64 " of %" PRIu64 " rows (%.1f %%)\n",
             e.min_frequency, dropped, rows + dropped,
             rows + dropped ? 100.0 * dropped / (rows + dropped) : 0.0);
    out += line;
  }
  if (expired > 0) {
    snprintf(line, sizeof(line),
             "  %" PRIu64 " rows dead by the job's --ev_steps_to_live at step %" PRId64
             " left out (they read as unseen)\n",
             expired, e.global_step);
    out += line;
  }
  if (e.bf16_values) {
    snprintf(line, sizeof(line),
             "  --export_values=bf16: row values %" PRIu64 " bytes instead of %" PRIu64
             " (saved %" PRIu64 ")\n",
             stored, fp32, fp32 - stored);
    out += line;
  }
  if (e.checkpoint_rows > 0 && rows > 0) {
    uint64_t table_bytes = 0;
    for (const ExportTableSummary& t : e.tables) table_bytes += t.bytes;
    snprintf(line, sizeof(line),
             "  %.1f bytes per row in the export (key, index, values), %.1f with the dense "
             "variables; the checkpoint %.1f (%" PRIu64 " bytes for %" PRIu64
             " rows: values, optimizer slots, metadata, dense variables with their slots)\n",
             static_cast<double>(table_bytes) / rows, static_cast<double>(e.file_bytes) / rows,
             static_cast<double>(e.checkpoint_bytes) / e.checkpoint_rows, e.checkpoint_bytes,
             e.checkpoint_rows);
    out += line;
  }
  if (e.trained_bf16) out += "  the job trained in bf16: predict and serve run the bf16 forward\n";
  return out;
}

}  // namespace deepfm::serving

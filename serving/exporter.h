// `deepfm export`: a serving model (serving/export_format.h) from a committed
// checkpoint of a job folder, whatever its shard count, format version or
// delta chain. The checkpoint is restored onto one in-memory shard (so it is
// verified exactly as a resume would verify it) and its rows' values, the
// dense variables and the job's feature spec are written; optimizer slots,
// row metadata and admission state stay behind.
//
// Exports live in numbered folders, TF Serving's layout: OUT/<global step>/
// model.dfm. A version folder appears whole (written under a temporary name,
// then renamed), so a server watching OUT never sees half of one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm::serving {

struct ExportOptions {
  std::string checkpoint_dir;      // the job folder
  std::string restore_checkpoint;  // a ckpt-<step> folder name in it; empty: the latest
  std::string out_dir;             // exports go to out_dir/<global step>/
  // Rows pushed fewer than this many times are left out (they then read as
  // a key the model never saw: their initial row). 0 or 1 keeps every row.
  uint32_t min_frequency = 0;
  bool bf16_values = false;  // store rows in bfloat16 (round to nearest even)
  // The job's spec when its folder lacks feature_spec.pbtxt (a preset name
  // or a file); it must match the checkpoint's fingerprint.
  std::string feature_spec = "auto";
  // Whether the job trained in bf16; -1: as the job folder's job.json says
  // (false when it has none).
  int trained_bf16 = -1;
  // The job's --ev_steps_to_live: rows it would read as dead at the
  // checkpoint's step are left out. -1: as job.json says (0 when absent).
  int64_t steps_to_live = -1;
};

struct ExportTableSummary {
  std::string name;
  uint64_t rows = 0;              // kept
  uint64_t dropped_rows = 0;      // by min_frequency
  uint64_t expired_rows = 0;      // dead by steps_to_live
  uint64_t bytes = 0;             // in the export: keys, index and values
  uint64_t fp32_value_bytes = 0;  // what its values would take in fp32
  int width = 0;
};

struct ExportSummary {
  std::string version_dir;  // out_dir/<global step>
  std::string file;         // version_dir/model.dfm
  std::string source;       // the checkpoint folder exported
  int64_t global_step = 0;
  uint32_t source_shards = 0;
  uint64_t checkpoint_bytes = 0;  // the checkpoint's shard files (a delta: with its chain)
  uint64_t checkpoint_rows = 0;
  uint64_t file_bytes = 0;
  uint64_t dense_bytes = 0;
  bool bf16_values = false;
  uint32_t min_frequency = 0;
  bool trained_bf16 = false;
  std::vector<ExportTableSummary> tables;
  double seconds = 0;
};

Status ExportCheckpoint(const ExportOptions& options, ExportSummary* summary);

// What `deepfm export` prints: per table rows and bytes, what each option
// saved, and the export's bytes per row against the checkpoint's.
std::string DescribeExport(const ExportSummary& summary);

}  // namespace deepfm::serving

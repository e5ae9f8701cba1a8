// The checkpoint manifest and directory layout, shared by the shards (which
// write and read the data files) and the chief worker (which commits a
// checkpoint by writing its manifest and renaming its folder).
//
// Layout under a checkpoint root:
//   checkpoint                 text: "latest ckpt-<step>" (the newest complete one)
//   ckpt-<step>/MANIFEST       text, see Manifest
//   ckpt-<step>/shard-<i>-of-<n>.bin
// A checkpoint is written under ckpt-<step>.tmp and renamed only when every
// file and the manifest are complete, so a folder named ckpt-<step> is whole.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace deepfm {

struct CheckpointFile {
  std::string name;      // relative to the checkpoint folder
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
};

// A trainer's data position at the checkpoint's step (proto DataPosition).
struct TrainerDataPosition {
  uint32_t task_index = 0;
  int32_t epoch = 0;
  uint32_t file_index = 0;
  uint64_t offset = 0;
  int64_t line_number = 0;
  int64_t line_index = 0;
  int64_t epoch_rows = 0;
};

struct Manifest {
  static constexpr int kVersion = 1;
  int64_t global_step = 0;
  uint32_t num_shards = 0;
  uint32_t num_slots = 0;
  std::string optimizer;
  int64_t batch_size = 0;     // of the job that saved, for resuming the data position
  int64_t num_workers = 0;
  // The training data as "name:bytes" per file, comma-separated, in order
  // (DataFilesFingerprint), and each trainer's position in it at the step.
  std::string data_files;
  std::vector<TrainerDataPosition> positions;
  std::vector<CheckpointFile> files;

  std::string Serialize() const;
  static Status Parse(const std::string& text, const std::string& path, Manifest* out);
};

// Identifies a job's data files for a resume: base name and size of each,
// in order; spaces and commas in names are escaped.
std::string DataFilesFingerprint(const std::vector<std::string>& paths);

std::string CheckpointFolderName(int64_t step);          // "ckpt-<step>"
std::string ShardFileName(uint32_t shard, uint32_t num_shards);

// Writes `contents` to `path` via a temporary file (created with `mode`),
// fsync and rename.
Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode = 0644);
Status ReadFile(const std::string& path, std::string* contents);

// The newest complete checkpoint folder under `root` (from its `checkpoint`
// file), or NotFound.
Status LatestCheckpoint(const std::string& root, std::string* folder);
// Reads and parses folder/MANIFEST and verifies that every listed file exists
// with its size and checksum; names the first file that does not.
Status ReadAndVerifyManifest(const std::string& folder, Manifest* out);
// Commits `tmp_folder` (holding the data files) as ckpt-<step> under root:
// writes its manifest, renames it, points `checkpoint` at it, and deletes the
// oldest checkpoints beyond keep_max (0 keeps all).
Status CommitCheckpoint(const std::string& root, const std::string& tmp_folder,
                        const Manifest& manifest, int keep_max);

}  // namespace deepfm

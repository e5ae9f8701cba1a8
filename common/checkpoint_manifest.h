// The checkpoint manifest and directory layout, shared by the shards (which
// write and read the data files) and the chief worker (which commits a
// checkpoint by writing its manifest and renaming its folder).
//
// Layout under a checkpoint root:
//   checkpoint                 the pointer file, text (see CheckpointState):
//                                latest ckpt-<step>   the newest committed one
//                                all ckpt-<step>      one per kept checkpoint, oldest
//                                ...                  commit first, the latest last
//   ckpt-<step>/MANIFEST       text, see Manifest
//   ckpt-<step>/shard-<i>-of-<n>.bin
// A checkpoint is written under ckpt-<step>.tmp and renamed only when every
// file and the manifest are complete and durable, so a folder named
// ckpt-<step> is whole. A folder the pointer does not list (a crash between
// the rename and the pointer, or one left behind by a rolled-back pointer) is
// an orphan: never restored unless asked for by name, never counted by
// retention. All I/O goes through an Env (default: the POSIX one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/env.h"
#include "common/read_position.h"
#include "common/status.h"

namespace deepfm {

struct CheckpointFile {
  std::string name;      // relative to the checkpoint folder
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
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
  // The fingerprint of the feature spec the job trained under (16 hex
  // digits, spec/feature_spec.h); empty in checkpoints older than specs,
  // which are all of the criteo layout.
  std::string feature_spec;
  // An incremental checkpoint (a delta): the checkpoint folder it applies
  // on top of (ckpt-<step>, the previous save), and that save's step. Its
  // files hold only the rows changed after base_step, plus every dense
  // variable and optimizer state. Empty for a full checkpoint.
  std::string base;
  int64_t base_step = 0;
  std::vector<CheckpointFile> files;

  bool is_delta() const { return !base.empty(); }
  std::string Serialize() const;
  static Status Parse(const std::string& text, const std::string& path, Manifest* out);
};

// Identifies a job's data files for a resume: base name and size of each,
// in order; spaces and commas in names are escaped.
std::string DataFilesFingerprint(const std::vector<std::string>& paths);
// The flag that resumes a job from a checkpoint other than the latest; error
// messages name it.
inline constexpr char kRestoreCheckpointFlag[] = "--restore_checkpoint";
// The pointer file's name under a checkpoint root.
inline constexpr char kCheckpointPointerFile[] = "checkpoint";

std::string CheckpointFolderName(int64_t step);          // "ckpt-<step>"
// Whether `name` is exactly "ckpt-<step>" (digits only: not a .tmp folder);
// sets *step when it is.
bool ParseCheckpointFolderName(const std::string& name, int64_t* step);
std::string ShardFileName(uint32_t shard, uint32_t num_shards);

// The pointer file: which committed checkpoint is the latest, and every kept
// one in the order they were committed (like TensorFlow's `checkpoint`
// state). The old one-line format ("latest ckpt-<step>" alone) parses with
// `all` holding just the latest.
struct CheckpointState {
  std::string latest;            // a folder name under the root, "ckpt-<step>"
  std::vector<std::string> all;  // oldest commit first; the latest is last

  std::string Serialize() const;
  static Status Parse(const std::string& text, const std::string& path, CheckpointState* out);
};

// Writes `contents` to `path` via a temporary file (created with `mode`):
// write, fsync, rename, fsync of the folder. Either the old contents or the
// new ones survive a crash at any point.
Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode = 0644,
                       Env* env = Env::Default());
Status ReadFile(const std::string& path, std::string* contents, Env* env = Env::Default());

// The pointer file under `root`; NotFound when there is none.
Status ReadCheckpointState(const std::string& root, CheckpointState* out,
                           Env* env = Env::Default());
// The newest complete checkpoint folder under `root` (the pointer's latest),
// or NotFound.
Status LatestCheckpoint(const std::string& root, std::string* folder, Env* env = Env::Default());
// Reads and parses folder/MANIFEST and verifies that every listed file exists
// with its size and checksum (streaming: memory does not grow with the files);
// names the first file that does not. DataLoss when the folder is damaged.
Status ReadAndVerifyManifest(const std::string& folder, Manifest* out, Env* env = Env::Default());

// A checkpoint folder and, when it is a delta, the saves it builds on, back
// to a full one: `chain` gets them full save first. With `verify` every
// file of every link is checked as ReadAndVerifyManifest does; without, only
// the manifests are read. A missing or broken link is DataLoss naming it.
struct ChainLink {
  std::string folder;
  Manifest manifest;
};
Status ReadCheckpointChain(const std::string& folder, bool verify, std::vector<ChainLink>* chain,
                           Env* env = Env::Default());

// Commits `tmp_folder` (holding the data files, already fsynced) as
// ckpt-<step> under root, in an order where a crash at any point leaves the
// previous commit restorable:
//   MANIFEST written and fsynced -> tmp folder fsynced -> renamed to
//   ckpt-<step> (an existing one is swapped out in one step, then deleted)
//   -> root fsynced -> pointer file replaced atomically -> root fsynced.
// Then retention: the oldest entries of the pointer's list beyond keep_max
// (0 keeps all) are deleted; never the one just committed, never an orphan.
// Leftover ckpt-*.tmp folders of crashed saves other than `tmp_folder` are
// deleted. An error means the commit did not take effect (the pointer names
// the previous checkpoint); failures after the pointer moved are logged only.
Status CommitCheckpoint(const std::string& root, const std::string& tmp_folder,
                        const Manifest& manifest, int keep_max, Env* env = Env::Default());

// The newest checkpoint under `root` that verifies (ReadAndVerifyManifest):
// the pointer's list from newest to oldest, then folders the list lacks from
// the highest step down. NotFound, naming what was tried, when none does.
Status FindNewestGoodCheckpoint(const std::string& root, std::string* folder,
                                Env* env = Env::Default());

// The error for a latest checkpoint `latest` (a folder under `root`, or the
// pointer file itself) that failed verification with `why`: it refuses to
// resume from it and names the newest checkpoint that verifies and the
// --restore_checkpoint value that resumes from it, or says that none does.
Status CorruptLatestCheckpointError(const std::string& root, const std::string& latest,
                                    const Status& why, Env* env = Env::Default());

}  // namespace deepfm

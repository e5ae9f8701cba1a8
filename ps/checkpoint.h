// A shard's checkpoint file: the shard as it was at one snapshot cut. Every
// table's rows come in groups of one routing slot (so a job saved with N
// shards restores onto M: each new shard keeps the slots it owns), with
// optimizer slots and row metadata, then the dense variables (the slice of
// each this shard holds, with its offset) and per-variable optimizer state.
// Little-endian binary, checked against the manifest's size and CRC-32C as
// it is read.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/env.h"
#include "common/status.h"
#include "ps/shard.h"

namespace deepfm::ps {

// The shard file's format version, the last byte of its magic "DFMSHRD1".
// Any change to the bytes SaveShard writes must bump it; the golden files
// under tests/ps/testdata/ckpt-v<N> hold one tiny checkpoint per version
// (DEEPFM_UPDATE_GOLDEN=1 writes the current one), and RestoreShard names
// the version of a file it cannot read. Version 3 added the dense slice
// offset; version 4 each table's admission state (pending counts or Bloom
// counters, at the cut) and, in a delta, the keys evicted since its base.
// Version 5 adds each dense variable's update (optimizer, or a moving
// average with its momentum: batch normalisation's statistics); a file with
// no moving average is still written as version 4. Versions 2 to 4 are read.
inline constexpr int kShardFileVersion = 5;

struct SaveShardOptions {
  // How long to wait for the shard's cut at the step (Shard::AwaitSnapshot).
  std::chrono::milliseconds wait{60000};
  // Cut now if the shard has no cut at the step: only for a shard no push
  // can reach (in-process tests and tools).
  bool force_cut = true;
  // An incremental file: only rows last pushed after this step (the
  // previous save's); -1 writes every row.
  int64_t since_step = -1;
  Env* env = nullptr;  // the file system; null: Env::Default()
};

struct SaveShardResult {
  CheckpointFile file;
  uint64_t rows = 0;
  std::vector<TrainerPosition> positions;  // shard 0: each trainer's at the cut
  double cut_ms = 0;
  double write_ms = 0;
  double max_stripe_ms = 0;  // the longest a stripe's lock was held at once for the copy
};

// Writes the shard's snapshot at `global_step` to dir/ShardFileName(...)
// through a temporary name, fsynced, while the shard keeps training. Memory
// beyond the shard's own: one stripe's rows plus the rows changed during
// the save.
Status SaveShard(Shard& shard, const std::string& dir, int64_t global_step,
                 SaveShardResult* result, const SaveShardOptions& options = {});
// The same, for callers that only need the file and the row count.
Status SaveShard(Shard& shard, const std::string& dir, int64_t global_step, CheckpointFile* file,
                 uint64_t* rows);

// Loads the checkpoint in `folder` (a ckpt-<step> folder; when it is a
// delta, the full checkpoint it builds on and every delta up to it, in
// order) for a shard that
// is not serving yet. It streams each file once into a staging shard with
// *shard's options, checking size and checksum as it reads, and keeps the
// rows of the slots this shard owns under its own shard count, its slice of
// each dense variable under its own partition plan (assembled from the
// saved slices, which may be cut otherwise), the global step and (shard 0)
// the trainers' data positions. Only when every file has verified does the staging shard
// replace *shard; on any error *shard is untouched. Refuses a checkpoint
// saved with another optimizer or slot count.
Status RestoreShard(std::unique_ptr<Shard>* shard, const std::string& folder, uint64_t* rows);

}  // namespace deepfm::ps

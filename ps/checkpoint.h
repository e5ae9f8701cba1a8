// A shard's checkpoint file: every table's rows grouped by routing slot (so a
// job saved with N shards restores onto M: each new shard keeps the slots it
// owns), with optimizer slots and row metadata, plus the dense variables and
// per-variable optimizer state. Little-endian binary; integrity is checked by
// the manifest's CRC-32C before anything is loaded.
#pragma once

#include <string>

#include "common/checkpoint_manifest.h"
#include "common/status.h"
#include "ps/shard.h"

namespace deepfm::ps {

// The shard file's format version, the last byte of its magic "DFMSHRD1".
// Any change to the bytes SaveShard writes must bump it; the golden files
// under tests/ps/testdata/ckpt-v<N> hold one tiny checkpoint per version
// (DEEPFM_UPDATE_GOLDEN=1 writes the current one), and RestoreShard names
// the version of a file it cannot read.
inline constexpr int kShardFileVersion = 1;

// Writes shard's state to dir/ShardFileName(...) via a temporary name.
Status SaveShard(Shard& shard, const std::string& dir, int64_t global_step, CheckpointFile* file,
                 uint64_t* rows);

// Loads the checkpoint in `folder` (a ckpt-<step> folder) into an empty
// shard: verifies the manifest and every file's checksum first, then takes
// the rows of the slots this shard owns under its own shard count, the dense
// variables it owns by name, and the global step. Refuses a checkpoint saved
// with an optimizer whose slots differ from this shard's.
Status RestoreShard(Shard* shard, const std::string& folder, uint64_t* rows);

}  // namespace deepfm::ps

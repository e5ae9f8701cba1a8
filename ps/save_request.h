// The work of a Save request on one shard, whoever carries the request: the
// gRPC service, or the stand-alone job's in-process shards. Checks the
// request, resolves its folder below the shard's checkpoint root (a
// relative name, no "..": a caller can never make a shard write elsewhere),
// and writes the shard's snapshot at the request's step there.
#pragma once

#include <string>

#include "common/status.h"
#include "proto/ps.pb.h"
#include "ps/shard.h"

namespace deepfm::ps {

// `checkpoint_root` empty refuses every save. A refused request changes
// nothing.
Status HandleSaveRequest(Shard& shard, const std::string& checkpoint_root, const SaveRequest& req,
                         SaveResponse* resp);

// The shard's Stats, with the checkpoint root its saves go to (absolute, so
// a trainer started elsewhere compares like with like).
void HandleStatsRequest(const Shard& shard, const std::string& checkpoint_root,
                        StatsResponse* resp);

}  // namespace deepfm::ps

// Shards in the worker's own process, for `deepfm train --standalone`
// (DeepRec's stand-alone training): PsClient reaches each one through a
// ShardEndpoint that calls the shard's own handlers on the calling thread,
// the same ones the gRPC service calls, with no network, no serialization
// and no token (nothing is reachable from outside the process). A call
// completes before it returns; shards of a multi-shard call run one after
// the other.
#pragma once

#include <memory>
#include <string>

#include "ps/shard.h"
#include "worker/shard_endpoint.h"

namespace deepfm::launcher {

// `shard` must outlive the endpoint. `checkpoint_root` is where its Save
// requests write (the job folder), as a served shard's --checkpoint.
std::unique_ptr<ShardEndpoint> InProcessShardEndpoint(ps::Shard* shard,
                                                      std::string checkpoint_root);

}  // namespace deepfm::launcher

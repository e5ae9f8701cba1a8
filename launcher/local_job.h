// A whole training job on this machine ("stand-alone training"): the shards
// and workers as child processes on free ports, supervised until the workers
// finish, then an orderly shutdown and a job-level metrics.json.
#pragma once

#include <string>
#include <vector>

#include "launcher/flag_set.h"

namespace deepfm::launcher {

// Flags of `deepfm train` (DeepRec train.py's, plus the job's own).
void AddTrainFlags(FlagSet* flags);

// Runs the job described by parsed flags; returns the process exit code.
// `self` is the launcher's own path, used to find ps_server and worker.
int RunLocalJob(const FlagSet& flags, const std::string& self);

}  // namespace deepfm::launcher

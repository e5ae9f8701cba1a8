// The checks a trainer makes before its first step: the servers it reached
// are the job it was told about. Each answers as the shard its place in the
// host list says, of the same shard count; runs the optimizer and learning
// rate the trainer was given (the optimizer runs on the servers, so a
// trainer that disagrees would report one configuration while training
// another); keeps its checkpoints in the trainer's job folder; and holds no
// table or dense variable of another model. Each refusal names both sides
// and the flag to fix, and comes before anything is registered or trained.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "proto/ps.pb.h"

namespace deepfm {

struct ExpectedJob {
  std::string optimizer;
  double learning_rate = 0;
  // The job folder the trainer reads and writes (--checkpoint, else
  // --output_dir); the servers' must be the same folder. Empty: not checked.
  std::string job_folder;
};

// stats[i] is the Stats answer of hosts[i]. FAILED_PRECONDITION names the
// first server that does not match, what it runs, and what was expected.
Status CheckServersMatch(const std::vector<ps::StatsResponse>& stats,
                         const std::vector<std::string>& hosts, const ExpectedJob& job);

// What the trainer's network registers on the servers.
struct ExpectedModel {
  std::string spec_name;  // the feature spec's name, for messages
  // Each table's name and floats per row (embedding dimension + 1).
  std::vector<std::pair<std::string, uint32_t>> tables;
  // Each dense variable's name and whole shape.
  std::vector<std::pair<std::string, std::vector<int64_t>>> dense;
};

// Every table and dense variable a server already holds (restored from a
// checkpoint, or registered by another trainer) is one of the model's, of
// the same size. What a server does not hold yet is not checked: another
// trainer may be registering it right now.
Status CheckServersHoldModel(const std::vector<ps::StatsResponse>& stats,
                             const std::vector<std::string>& hosts, const ExpectedModel& model);

// Two spellings of one folder compare equal: absolute, normalised, without
// a trailing separator (symbolic links are not followed: the folder may not
// exist on this host yet).
std::string NormalizedFolder(const std::string& folder);

// The chief can create `folder` and write a file in it (then removes the
// file). The refusal names the folder, the reason and the flags.
Status CheckJobFolderWritable(const std::string& folder);

}  // namespace deepfm

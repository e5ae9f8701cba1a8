#include "worker/server_check.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

namespace deepfm {
namespace {

namespace fs = std::filesystem;

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string t = "[";
  for (size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
  return t + "]";
}

// Where a server's model came from, for a refusal's message.
std::string Provenance(const ps::StatsResponse& s) {
  if (s.restored_global_step() > 0) {
    return "restored from the checkpoint at step " + std::to_string(s.restored_global_step()) +
           (s.checkpoint_dir().empty() ? std::string() : " in " + s.checkpoint_dir());
  }
  return "registered by a trainer started with another model";
}

}  // namespace

std::string NormalizedFolder(const std::string& folder) {
  std::error_code ec;
  fs::path p = fs::absolute(folder, ec);
  if (ec) p = folder;
  p = p.lexically_normal();
  std::string out = p.string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Status CheckServersMatch(const std::vector<ps::StatsResponse>& stats,
                         const std::vector<std::string>& hosts, const ExpectedJob& job) {
  if (stats.size() != hosts.size()) {
    return Internal("server check: " + std::to_string(stats.size()) + " answers for " +
                    std::to_string(hosts.size()) + " servers");
  }
  const std::string own_folder = job.job_folder.empty() ? "" : NormalizedFolder(job.job_folder);
  for (size_t i = 0; i < stats.size(); ++i) {
    const ps::StatsResponse& s = stats[i];
    // The servers keep the rate as a float: compare at float precision.
    const double rate_tolerance = 1e-6 * std::fabs(job.learning_rate) + 1e-12;
    if (s.optimizer() != job.optimizer ||
        std::fabs(s.learning_rate() - job.learning_rate) > rate_tolerance) {
      return FailedPrecondition("parameter server " + hosts[i] + " runs optimizer " +
                                s.optimizer() + " with learning rate " +
                                std::to_string(s.learning_rate()) +
                                ", but this worker was given --optimizer=" + job.optimizer +
                                " --learning_rate=" + std::to_string(job.learning_rate));
    }
    if (s.num_shards() != stats.size() || s.shard_index() != i) {
      return FailedPrecondition(
          "parameter server " + hosts[i] + " says it is shard " + std::to_string(s.shard_index()) +
          " of " + std::to_string(s.num_shards()) + " but --ps_hosts lists it as shard " +
          std::to_string(i) + " of " + std::to_string(stats.size()));
    }
    if (!own_folder.empty() && NormalizedFolder(s.checkpoint_dir()) != own_folder) {
      const std::string theirs = s.checkpoint_dir().empty()
                                     ? "keeps no checkpoints (it was started without a job folder)"
                                     : "keeps its checkpoints in " + s.checkpoint_dir();
      return FailedPrecondition(
          "parameter server " + hosts[i] + " " + theirs + ", but this trainer's job folder is " +
          own_folder +
          ": every save would put the shards' files in one folder and the manifest in the other, "
          "and none would commit. Give every task the same --checkpoint (or --output_dir)");
    }
  }
  return Status::Ok();
}

Status CheckServersHoldModel(const std::vector<ps::StatsResponse>& stats,
                             const std::vector<std::string>& hosts, const ExpectedModel& model) {
  std::map<std::string, uint32_t> tables(model.tables.begin(), model.tables.end());
  std::map<std::string, std::vector<int64_t>> dense(model.dense.begin(), model.dense.end());
  const std::string fix =
      ". Start every trainer with the job's --feature_spec and --hidden_units, or give the "
      "servers a fresh job folder (--checkpoint)";
  for (size_t i = 0; i < stats.size() && i < hosts.size(); ++i) {
    const ps::StatsResponse& s = stats[i];
    for (const ps::TableStats& t : s.tables()) {
      auto it = tables.find(t.name());
      if (it == tables.end()) {
        return FailedPrecondition("parameter server " + hosts[i] + " holds table '" + t.name() +
                                  "' (" + Provenance(s) + "), which this trainer's feature spec '" +
                                  model.spec_name + "' does not have" + fix);
      }
      if (it->second != t.dim()) {
        return FailedPrecondition("parameter server " + hosts[i] + " holds table '" + t.name() +
                                  "' with embedding dimension " + std::to_string(t.dim() - 1) +
                                  " (" + Provenance(s) + "), but this trainer's feature spec '" +
                                  model.spec_name + "' gives it " + std::to_string(it->second - 1) +
                                  fix);
      }
    }
    for (const ps::DenseStats& d : s.dense()) {
      const std::vector<int64_t> shape(d.shape().begin(), d.shape().end());
      auto it = dense.find(d.name());
      if (it == dense.end()) {
        return FailedPrecondition("parameter server " + hosts[i] + " holds dense variable '" +
                                  d.name() + "' " + ShapeText(shape) + " (" + Provenance(s) +
                                  "), which this trainer's network does not have" + fix);
      }
      if (it->second != shape) {
        return FailedPrecondition("parameter server " + hosts[i] + " holds dense variable '" +
                                  d.name() + "' of shape " + ShapeText(shape) + " (" +
                                  Provenance(s) + "), but this trainer's network gives it " +
                                  ShapeText(it->second) + fix);
      }
    }
  }
  return Status::Ok();
}

Status CheckJobFolderWritable(const std::string& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  const std::string fix =
      ": the chief writes checkpoints, reports and event files there. Give --checkpoint (or "
      "--output_dir) a folder this task can write, on storage every task shares";
  if (ec) {
    return FailedPrecondition("cannot create the job folder " + folder + " (" + ec.message() +
                              ")" + fix);
  }
  const fs::path probe = fs::path(folder) / (".write-check-" + std::to_string(::getpid()));
  FILE* f = std::fopen(probe.c_str(), "w");
  if (!f) {
    return FailedPrecondition("cannot write in the job folder " + folder + " (" +
                              std::strerror(errno) + ")" + fix);
  }
  const bool written = std::fputs("x", f) >= 0;
  const bool closed = std::fclose(f) == 0;
  fs::remove(probe, ec);
  if (!written || !closed) {
    return FailedPrecondition("cannot write in the job folder " + folder + fix);
  }
  return Status::Ok();
}

}  // namespace deepfm

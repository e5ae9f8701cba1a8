#include "worker/server_check.h"

#include <cmath>

namespace deepfm {

Status CheckServersMatch(const std::vector<ps::StatsResponse>& stats,
                         const std::vector<std::string>& hosts, const std::string& optimizer,
                         double learning_rate) {
  if (stats.size() != hosts.size()) {
    return Internal("server check: " + std::to_string(stats.size()) + " answers for " +
                    std::to_string(hosts.size()) + " servers");
  }
  for (size_t i = 0; i < stats.size(); ++i) {
    const ps::StatsResponse& s = stats[i];
    // The servers keep the rate as a float: compare at float precision.
    const double rate_tolerance = 1e-6 * std::fabs(learning_rate) + 1e-12;
    if (s.optimizer() != optimizer ||
        std::fabs(s.learning_rate() - learning_rate) > rate_tolerance) {
      return FailedPrecondition("parameter server " + hosts[i] + " runs optimizer " +
                                s.optimizer() + " with learning rate " +
                                std::to_string(s.learning_rate()) +
                                ", but this worker was given --optimizer=" + optimizer +
                                " --learning_rate=" + std::to_string(learning_rate));
    }
    if (s.num_shards() != stats.size() || s.shard_index() != i) {
      return FailedPrecondition(
          "parameter server " + hosts[i] + " says it is shard " + std::to_string(s.shard_index()) +
          " of " + std::to_string(s.num_shards()) + " but --ps_hosts lists it as shard " +
          std::to_string(i) + " of " + std::to_string(stats.size()));
    }
  }
  return Status::Ok();
}

}  // namespace deepfm

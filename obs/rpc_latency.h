// RPC latency per method as a Prometheus histogram, for a server (time in
// the handler) or a client (time from send to answer). Buckets double from
// 50 us to 3.3 s, so p50 and p99 come out of histogram_quantile() to within
// a factor of two anywhere a step's RPCs live.
#pragma once

#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace deepfm::obs {

class RpcLatency {
 public:
  // `family` is the metric's name (deepfm_rpc_server_seconds); `methods` are
  // made up front so Observe never allocates or locks the registry.
  RpcLatency(prometheus::Registry& registry, const std::string& family, const std::string& help,
             const std::vector<std::string>& methods, const prometheus::Labels& labels = {});

  // Seconds one call of `method` took; a method not named at construction
  // is ignored (a programming error, not worth a lock here).
  void Observe(const std::string& method, double seconds);

  static prometheus::Histogram::BucketBoundaries Buckets();

 private:
  std::unordered_map<std::string, prometheus::Histogram*> by_method_;
};

}  // namespace deepfm::obs

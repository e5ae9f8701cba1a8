#include "obs/rpc_latency.h"

namespace deepfm::obs {

prometheus::Histogram::BucketBoundaries RpcLatency::Buckets() {
  prometheus::Histogram::BucketBoundaries b;
  for (double le = 50e-6; le < 4.0; le *= 2) b.push_back(le);
  return b;
}

RpcLatency::RpcLatency(prometheus::Registry& registry, const std::string& family,
                       const std::string& help, const std::vector<std::string>& methods,
                       const prometheus::Labels& labels) {
  auto& f = prometheus::BuildHistogram().Name(family).Help(help).Labels(labels).Register(registry);
  for (const std::string& m : methods) by_method_[m] = &f.Add({{"method", m}}, Buckets());
}

void RpcLatency::Observe(const std::string& method, double seconds) {
  auto it = by_method_.find(method);
  if (it != by_method_.end()) it->second->Observe(seconds);
}

}  // namespace deepfm::obs

// In-process parameter-server shards on loopback ports, for worker tests that
// need real servers.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ps/ps_server.h"

namespace deepfm::testing_util {

class LoopbackShards {
 public:
  // checkpoint_root: where Save writes (the job folder); empty saves nothing.
  LoopbackShards(uint32_t n, ps::OptimizerType optimizer, float learning_rate,
                 int64_t dense_slice_bytes = kDefaultDenseSliceBytes,
                 const std::string& checkpoint_root = "") {
    for (uint32_t i = 0; i < n; ++i) {
      ps::ShardOptions so;
      so.shard_index = i;
      so.num_shards = n;
      so.optimizer.type = optimizer;
      so.optimizer.learning_rate = learning_rate;
      so.dense_slice_bytes = dense_slice_bytes;
      Status s;
      auto shard = ps::Shard::Create(so, &s);
      EXPECT_TRUE(s.ok()) << s.ToString();
      ps::ServerOptions server;
      server.checkpoint_root = checkpoint_root;
      servers_.push_back(ps::PsServer::Start(server, std::move(shard), &s));
      EXPECT_TRUE(s.ok()) << s.ToString();
      hosts_.push_back(servers_.back()->address());
    }
  }
  const std::vector<std::string>& hosts() const { return hosts_; }
  ps::Shard& shard(int i) { return servers_[i]->shard(); }
  ps::PsServer& server(int i) { return *servers_[i]; }

 private:
  std::vector<std::unique_ptr<ps::PsServer>> servers_;
  std::vector<std::string> hosts_;
};

}  // namespace deepfm::testing_util

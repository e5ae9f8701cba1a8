// Shard: the whole state of one parameter-server shard (its embedding tables,
// dense variables, optimizer and global step) and the request logic the gRPC
// service exposes. Independent of the transport, so tests and benchmarks can
// drive it in-process.
//
// Every request is validated in full before anything is applied: a request
// that fails leaves the shard exactly as it was.
//
// A shard serves only what routes to it: every key pulled or pushed must fall
// in a slot this shard owns under (num_shards, num_slots), and a dense
// variable must be one whose name routes here. Anything else is refused with
// FAILED_PRECONDITION naming the key's slot and its owner, so a client whose
// routing disagrees with the servers' (another shard count, slot count or
// hash) fails at its first step instead of training on the wrong rows.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/routing.h"
#include "common/status.h"
#include "proto/ps.pb.h"
#include "ps/dense_store.h"
#include "ps/embedding_table.h"
#include "ps/job_coordinator.h"
#include "ps/optimizer.h"

namespace deepfm::ps {

struct ShardOptions {
  uint32_t shard_index = 0;
  uint32_t num_shards = 1;
  uint32_t num_slots = kDefaultNumSlots;  // routing slots of the job; >= num_shards
  uint32_t num_trainers = 0;              // trainers in the job; 0: not checked
  OptimizerOptions optimizer;
  int table_stripes = 256;
};

class Shard {
 public:
  // Fails (returns null and sets *status) when the optimizer options or the
  // shard/slot counts are bad.
  static std::unique_ptr<Shard> Create(const ShardOptions& options, Status* status);

  Status RegisterTable(const RegisterTableRequest& req, RegisterTableResponse* resp);
  Status RegisterDense(const RegisterDenseRequest& req, RegisterDenseResponse* resp);
  Status Pull(const PullRequest& req, PullResponse* resp);
  Status Push(const PushRequest& req, PushResponse* resp);
  Status GlobalStep(const StepRequest& req, StepResponse* resp);
  Status WorkerDone(const WorkerDoneRequest& req, WorkerDoneResponse* resp);
  Status Heartbeat(const HeartbeatRequest& req, HeartbeatResponse* resp);
  void JobStatus(JobStatusResponse* resp) const;
  void Stats(StatsResponse* resp) const;

  int64_t global_step() const { return global_step_.load(std::memory_order_acquire); }
  // Set by a restore: the checkpoint's global step (0 for a fresh shard).
  int64_t restored_global_step() const { return restored_step_.load(); }
  void set_restored_global_step(int64_t step) { restored_step_ = step; }
  const ShardOptions& options() const { return options_; }
  const Router& router() const { return router_; }
  const Optimizer& optimizer() const { return *optimizer_; }
  // Null when there is no such table.
  EmbeddingTable* table(uint32_t id) const;
  DenseStore& dense() { return dense_; }
  std::vector<EmbeddingTable*> tables() const;

 private:
  Shard(const ShardOptions& options, std::unique_ptr<Optimizer> opt);
  // Advances the step to at least `step` and returns the resulting value.
  int64_t ObserveStep(int64_t step);
  // OK when every key routes to this shard; else FAILED_PRECONDITION naming
  // the first stray key, its slot and its owner.
  Status CheckKeysOwned(const std::vector<uint64_t>& keys, const char* rpc,
                        const std::string& table) const;

  ShardOptions options_;
  Router router_;
  std::unique_ptr<Optimizer> optimizer_;
  DenseStore dense_;
  mutable std::shared_mutex tables_mu_;  // registry only; rows have their own locks
  std::vector<std::unique_ptr<EmbeddingTable>> tables_;
  std::unordered_map<std::string, uint32_t> table_by_name_;
  std::atomic<int64_t> global_step_{0};
  std::atomic<int64_t> restored_step_{0};
  JobCoordinator coordinator_;

  std::atomic<uint64_t> pull_requests_{0}, push_requests_{0};
  std::atomic<uint64_t> pulled_keys_{0}, pushed_keys_{0};
  std::atomic<uint64_t> bytes_in_{0}, bytes_out_{0};
};

}  // namespace deepfm::ps

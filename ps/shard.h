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
// variable (or slice of one) must be the one the partition plan
// (common/dense_partition.h) puts here. Anything else is refused with
// FAILED_PRECONDITION naming the key's slot and its owner, so a client whose
// routing disagrees with the servers' (another shard count, slot count or
// hash) fails at its first step instead of training on the wrong rows.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/dense_partition.h"
#include "common/routing.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/ps.pb.h"
#include "ps/dense_store.h"
#include "ps/embedding_table.h"
#include "ps/ev_policy.h"
#include "ps/job_coordinator.h"
#include "ps/optimizer.h"
#include "ps/push_gate.h"
#include "ps/push_decoder.h"
#include "ps/push_ledger.h"
#include "ps/snapshot_holder.h"
#include "ps/sweeper.h"

namespace deepfm::ps {


struct ShardOptions {
  uint32_t shard_index = 0;
  uint32_t num_shards = 1;
  uint32_t num_slots = kDefaultNumSlots;  // routing slots of the job; >= num_shards
  uint32_t num_trainers = 0;              // trainers in the job; 0: not checked
  OptimizerOptions optimizer;
  int table_stripes = 256;
  // How long pushes beyond a pending snapshot cut may wait for the steps up
  // to it (PushGate); also a Save's default wait.
  int cut_wait_ms = 60000;
  // A snapshot nobody writes (the chief died between Cut and Save) is
  // dropped after this long, so its copies on write stop growing. Longer
  // than a save may take (the client's save deadline is an hour).
  int64_t snapshot_ttl_ms = 2 * 3600 * 1000;
  // Dense variables larger than this are partitioned over the shards
  // (PartitionDense); every trainer of the job must use the same value.
  int64_t dense_slice_bytes = kDefaultDenseSliceBytes;
  // Admission and eviction for every table (ps/ev_policy.h).
  EvPolicy ev;
  // The most the tables may hold, bytes; 0: unbounded. See Shard's note.
  int64_t memory_budget_bytes = 0;
  // Record evicted keys for incremental checkpoints (the job saves deltas).
  bool track_evictions = false;
  // Run the sweeper thread; tests that must know when rows go turn it off
  // and call SweepNow.
  bool background_sweeps = true;
};

// Eviction runs on a background thread of the shard (the sweeper): every
// ev.evict_interval_steps global steps, and after each save, it sweeps each
// table (steps_to_live, L2), holding a stripe's lock for at most 1,024 rows
// at a time. Under a
// memory budget it also keeps 5 % of the budget free: when spare room (budget
// not yet used plus rows evicted and not yet reused) falls below 2 %, it drops
// the shard's least valuable rows (least recently pushed, then least
// frequently) across all tables, chosen from a sample of every stripe. A push
// that still finds no room evicts the least valuable sixteenth of its own
// stripe first, so no push fails for memory; the tables exceed the budget by
// at most one arena chunk and one key-index doubling per pushing thread
// racing on the last bytes.
class Shard {
 public:
  ~Shard();
  // Fails (returns null and sets *status) when the optimizer options or the
  // shard/slot counts are bad.
  static std::unique_ptr<Shard> Create(const ShardOptions& options, Status* status);

  Status RegisterTable(const RegisterTableRequest& req, RegisterTableResponse* resp);
  Status RegisterDense(const RegisterDenseRequest& req, RegisterDenseResponse* resp);
  Status Pull(const PullRequest& req, PullResponse* resp);
  Status Push(const PushRequest& req, PushResponse* resp);
  Status GlobalStep(const StepRequest& req, StepResponse* resp);
  // Shard 0: a snapshot cut at the current step (see ps.proto's Cut).
  Status Cut(CutResponse* resp);
  // The same for an RPC: a traced request (--timeline) gets the shard's span.
  Status Cut(const CutRequest& req, CutResponse* resp);
  // The snapshot at `step`, waiting up to `wait` for this shard to take its
  // cut (PushGate::AwaitCut). With `force`, a shard that has no cut at
  // `step` takes one now, whatever it has applied: only for a shard no push
  // can reach (in-process tests and tools).
  Status AwaitSnapshot(int64_t step, std::chrono::milliseconds wait, bool force,
                       std::shared_ptr<const ShardSnapshot>* out);
  // Lets the tables run without copies again once `snap` is written (or
  // abandoned); a newer snapshot is left alone.
  void EndSnapshot(const std::shared_ptr<const ShardSnapshot>& snap);
  // How long the newest cut held pushes back (PushGate::last_cut_hold_ms).
  double last_cut_hold_ms() const { return gate_.last_cut_hold_ms(); }
  Status WorkerDone(const WorkerDoneRequest& req, WorkerDoneResponse* resp);
  Status Heartbeat(const HeartbeatRequest& req, HeartbeatResponse* resp);
  void JobStatus(JobStatusResponse* resp) const;
  void Stats(StatsResponse* resp) const;
  // Runs the sweeps due now on the calling thread (tests; the sweeper calls
  // it too). Returns rows dropped.
  uint64_t SweepNow(bool force_policy_sweep);
  // A save of the snapshot at `step` was written (since_step: the delta's
  // base, -1 for a full save): drops the eviction records it covers and
  // wakes the sweeper.
  void SaveWritten(int64_t step, int64_t since_step);
  // Null when there is no budget.
  const MemoryBudget* budget() const { return budget_.get(); }

  int64_t global_step() const { return gate_.step(); }
  // Set by a restore: the checkpoint's global step (0 for a fresh shard).
  int64_t restored_global_step() const { return restored_step_.load(); }
  // A restore: the checkpoint's step and what it recorded of the data
  // (shard 0 answers trainers' Stats with it).
  void SetRestored(int64_t step, const StatsResponse& data);
  const ShardOptions& options() const { return options_; }
  const Router& router() const { return router_; }
  const Optimizer& optimizer() const { return *optimizer_; }
  // Null when there is no such table.
  EmbeddingTable* table(uint32_t id) const;
  DenseStore& dense() { return dense_; }
  std::vector<EmbeddingTable*> tables() const;

 private:
  Shard(const ShardOptions& options, std::unique_ptr<Optimizer> opt);
  // PushGate's cut function: no push is in flight.
  void TakeSnapshot(int64_t step);
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
  std::atomic<int64_t> restored_step_{0};
  JobCoordinator coordinator_;
  PushLedger ledger_;
  PushGate gate_;
  PushDecoder push_decoder_;  // reads tables_ and dense_ through this shard

  mutable std::mutex positions_mu_;
  // Shard 0: each trainer's data position after its newest applied push.
  std::map<uint32_t, TrainerPosition> positions_ DEEPFM_GUARDED_BY(positions_mu_);
  StatsResponse restored_data_ DEEPFM_GUARDED_BY(positions_mu_);

  SnapshotHolder snapshot_;

  std::atomic<uint64_t> pull_requests_{0}, push_requests_{0};
  std::atomic<uint64_t> pulled_keys_{0}, pushed_keys_{0};
  std::atomic<uint64_t> bytes_in_{0}, bytes_out_{0};
  std::atomic<uint64_t> duplicate_pushes_{0};

  std::unique_ptr<MemoryBudget> budget_;
  std::atomic<double> longest_sweep_hold_ms_{0};
  std::atomic<uint64_t> sweeps_{0};
  void NoteSweepHold(double ms);
  std::mutex sweep_mu_;  // when the policy is due next (not the sweeps themselves)
  int64_t next_sweep_step_ DEEPFM_GUARDED_BY(sweep_mu_) = 0;
  // Frees the least valuable rows of every table when spare room is low.
  uint64_t BudgetSweep();
  // Last: its thread sweeps the tables above, and stops first.
  std::unique_ptr<Sweeper> sweeper_;
};

}  // namespace deepfm::ps

// PsClient: a worker's view of the sharded parameter servers. Keys are routed
// by slot (common/routing.h); dense variables are partitioned into slices
// over the shards (common/dense_partition.h) and put back together here, so
// callers see whole tensors. A Pull or Push sends one request per shard, to
// all shards in parallel, and waits for all.
//
// Failures: every RPC has a deadline; a shard that does not answer in time is
// an error naming its address. UNAVAILABLE (a shard restarting or not yet
// listening) is retried with exponential backoff a bounded number of times.
//
// Thread safety: Pull and Push may run concurrently from different threads
// (the trainer pulls ahead while it pushes); registration happens before.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/dense_partition.h"
#include "common/routing.h"
#include "common/status.h"
#include "proto/ps.grpc.pb.h"
#include "rpc/security.h"
#include "worker/shard_endpoint.h"

namespace deepfm {

struct PsClientOptions {
  std::vector<std::string> hosts;    // host:port of shard 0, 1, ...
  uint32_t num_slots = kDefaultNumSlots;  // routing slots; must equal the servers'
  int rpc_deadline_ms = 60000;
  // A Save writes a whole shard and may take far longer than a step's RPC.
  int save_deadline_ms = 3600 * 1000;
  // This trainer's index in the job: pushes carry it with a session id and
  // a sequence number, so a shard applies a retried push at most once.
  uint32_t task_index = 0;
  int connect_timeout_ms = 60000;    // how long to wait for every shard at start
  int max_retries = 5;               // for UNAVAILABLE
  int initial_backoff_ms = 50;
  int max_message_bytes = 512 << 20;
  ps::DType wire_dtype = ps::F32;    // values on the wire, both directions
  // The minimum dense slice (PartitionDense); must equal the shards'.
  int64_t dense_slice_bytes = kDefaultDenseSliceBytes;
  rpc::Security security;            // the job's token and TLS credentials
};

// Bytes of request and response payload a call moved, for the step report,
// in all and per shard (sized to the shard count by the call).
struct WireBytes {
  uint64_t sent = 0;
  uint64_t received = 0;
  std::vector<uint64_t> shard;        // sent + received, per shard
  std::vector<uint64_t> shard_dense;  // of which dense values or gradients

  // Adds another call's counts, growing the per-shard vectors as needed.
  void Add(const WireBytes& other);
};

class PsClient {
 public:
  // Connects to every shard, waiting up to connect_timeout_ms for each.
  static Status Connect(const PsClientOptions& options, std::unique_ptr<PsClient>* out);

  // A client of shards reached otherwise (the stand-alone job's in-process
  // shards): options.hosts names them for errors, one name per shard.
  static Status Attach(const PsClientOptions& options,
                       std::vector<std::unique_ptr<ShardEndpoint>> shards,
                       std::unique_ptr<PsClient>* out);

  int num_shards() const { return static_cast<int>(shards_.size()); }
  const Router& router() const { return router_; }
  const std::vector<std::string>& hosts() const { return options_.hosts; }

  // Registers a table on every shard (each holds its slots' rows); returns a
  // handle for Pull/Push. Same spec from every worker gives the same table.
  Status RegisterTable(const ps::TableSpec& spec, int* handle);
  // Registers a dense variable: each slice on its shard, in parallel; the
  // first registration's values win. Returns a handle. `moving_average`:
  // no optimizer, each push's values are batch statistics the variable
  // follows with `momentum` (ps.proto DenseSpec).
  Status RegisterDense(const std::string& name, const std::vector<int64_t>& shape,
                       const std::vector<float>& init, int* handle, bool moving_average = false,
                       float momentum = 0);
  int64_t DenseSize(int handle) const { return dense_[handle].size; }

  // One table's part of a Pull or Push: its unique keys and their rows (a
  // pull's output) or gradients (a push's input), [n * dim].
  struct SparsePart {
    int table = 0;
    const uint64_t* keys = nullptr;
    size_t n = 0;
    float* rows = nullptr;
    const float* grads = nullptr;
  };

  // Pulls every part's rows (DeepRec's embedding fusion: one request per
  // shard carries every table) and each dense variable d into dense_out[d]
  // (nullptr skips it). read_only pulls do not create rows on the servers
  // (evaluation). global_step gets shard 0's.
  Status Pull(const std::vector<SparsePart>& sparse, const std::vector<float*>& dense_out,
              bool read_only, int64_t* global_step, WireBytes* bytes = nullptr);
  // Pushes every part's gradients and dense_grads[d] in one request per
  // shard; otherwise as the one-table Push below.
  Status Push(const std::vector<SparsePart>& sparse, const std::vector<const float*>& dense_grads,
              bool advance_step, int64_t* global_step, WireBytes* bytes = nullptr,
              const ps::DataPosition* position = nullptr);

  // Pulls rows of uniq keys (unique) of `table` into rows[U * dim], and each
  // dense variable d into dense_out[d] (nullptr skips it). read_only pulls do
  // not create rows on the servers (evaluation). global_step gets shard 0's.
  Status Pull(int table, const uint64_t* uniq, size_t n, float* rows,
              const std::vector<float*>& dense_out, bool read_only, int64_t* global_step,
              WireBytes* bytes = nullptr);

  // Pushes gradients grads[U * dim] of uniq keys and dense_grads[d] (nullptr
  // skips). With advance_step, shard 0 numbers the push first (the next
  // global step) and the other shards then apply it as that step, so every
  // shard can order it around a snapshot cut; *global_step gets the step.
  // Without it, *global_step is the step the push counts as. `position`
  // (shard 0 keeps it for checkpoints) is the trainer's data position after
  // this push's batch. A push is applied at most once even when retried.
  Status Push(int table, const uint64_t* uniq, size_t n, const float* grads,
              const std::vector<const float*>& dense_grads, bool advance_step,
              int64_t* global_step, WireBytes* bytes = nullptr,
              const ps::DataPosition* position = nullptr);

  // A trainer restarted alone: its previous process may have died after
  // shard 0 numbered `step` and before the other shards got that push. Tells
  // them the step is done (changing nothing), so a snapshot cut does not
  // wait for it forever.
  Status CloseStep(int64_t step);
  uint64_t session() const { return session_; }
  Status GlobalStep(int64_t* step);
  // Tells the chief shard this worker is done; *done gets how many are.
  Status WorkerDone(uint32_t task_index, uint32_t* done);
  // Reports this trainer's phase and progress to the chief shard.
  Status Heartbeat(const ps::HeartbeatRequest& req);
  // Every trainer's last heartbeat, as the chief shard saw it.
  Status JobStatus(ps::JobStatusResponse* status);
  // Asks shard 0 for a snapshot cut; *global_step gets its step S.
  Status Cut(int64_t* global_step);
  // Every shard writes its snapshot at S (after Cut) into `dir`, a folder
  // name relative to the shards' checkpoint root.
  struct SaveResult {
    std::vector<CheckpointFile> files;  // in shard order
    uint64_t rows = 0;
    std::vector<ps::TrainerPosition> positions;  // from shard 0
    double max_cut_ms = 0;
    double max_write_ms = 0;
  };
  // since_step > 0 writes an incremental checkpoint: only the rows pushed
  // after that step.
  Status Save(const std::string& dir, int64_t global_step, SaveResult* result,
              int64_t since_step = 0);
  Status Stats(std::vector<ps::StatsResponse>* stats);
  // Asks every shard to stop (orderly: in-flight calls finish).
  Status ShutdownAll();

 private:
  struct TableInfo {
    int dim;
    std::vector<uint32_t> ids;  // per shard
  };
  struct DensePart {
    DenseSlice slice;
    uint32_t id;  // on slice.shard
  };
  struct DenseInfo {
    std::string name;
    int64_t size;
    std::vector<DensePart> parts;
  };
  // Where a shard's n-th dense value of a request goes: variable, part.
  using DenseRef = std::pair<int, int>;

  explicit PsClient(const PsClientOptions& options);
  std::unique_ptr<grpc::ClientContext> NewContext(int deadline_ms = 0) const;
  std::vector<int> AllShards() const;  // 0 .. num_shards - 1
  Status Error(int shard, const char* what, const grpc::Status& s) const;
  // Splits uniq keys by owner shard: idx[s] lists positions in uniq.
  void Route(const uint64_t* uniq, size_t n, std::vector<std::vector<uint32_t>>* idx) const;
  // Route for every part: idx[p][s].
  void RouteParts(const std::vector<SparsePart>& parts,
                  std::vector<std::vector<std::vector<uint32_t>>>* idx) const;

  // Runs call(shard, ctx, done) for each shard in `shards` in parallel, waits,
  // and retries those that failed with UNAVAILABLE.
  template <typename Call>
  Status ParallelCall(const char* what, const std::vector<int>& shards, Call call,
                      int deadline_ms = 0);

  PsClientOptions options_;
  Router router_;
  std::vector<std::unique_ptr<ShardEndpoint>> shards_;
  std::vector<TableInfo> tables_;
  std::vector<DenseInfo> dense_;
  const uint64_t session_;             // random per client: at-most-once pushes
  std::atomic<uint64_t> push_seq_{0};
};

}  // namespace deepfm

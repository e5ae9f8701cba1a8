// Trainer: one worker's training loop and evaluation against the parameter
// servers, pipelined as DESIGN.md §2 describes, in stages joined by channels
// (worker/pipeline.h):
//
//   reader thread -> prefetch stage: dedup keys, pull rows + dense weights
//                 -> compute stage (calling thread): DeepFM forward/backward
//                 -> push stage: push sparse + dense gradients
//
// The chief's checkpoints and every trainer's resume point belong to a
// Checkpointer (worker/checkpointer.h); the push stage only tells it which
// step each push got.
//
// `staleness` bounds how far pulls may run ahead of pushes: the pull for local
// step s waits until the pushes of steps < s - staleness have been applied.
// With staleness 0 and one worker, training is deterministic.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/report.h"
#include "common/status.h"
#include "obs/timeline.h"
#include "obs/trainer_metrics.h"
#include "worker/checkpointer.h"
#include "worker/data_reader.h"
#include "worker/deepfm_model.h"
#include "worker/heartbeat.h"
#include "worker/pooling.h"
#include "worker/ps_client.h"

namespace deepfm {

// The training of the last --log_every steps, as the chief logs it.
struct IntervalReport {
  int64_t local_step = 0;
  int64_t global_step = 0;
  double loss = 0;  // mean over the interval's steps
  double global_steps_per_sec = 0;
  double samples_per_sec = 0;
  // Microseconds per step of the compute thread: waiting for a pulled batch,
  // forward + backward, handing the gradients to the push thread.
  double wait_us = 0, compute_us = 0, handoff_us = 0;
};

struct TrainerOptions {
  // What the data is and which tables it looks up; null: the criteo preset.
  // The model's features, numeric inputs and embedding dimension follow it
  // (num_fields, num_dense and embedding_dim of `model` are overwritten).
  FeatureSpecPtr spec;
  DeepFMConfig model;
  ReaderOptions train_data;           // files, batch_size, part_index/num_parts, epochs
  int64_t steps = 0;                  // stop at this global step; 0 = when the data ends
  int staleness = 1;
  // Read, de-duplicate and pull step i + 1 while step i computes (DeepRec's
  // SmartStage); false: step i + 1's read waits for step i's push.
  bool smartstaged = true;
  // One pull per shard for every table; false: one per table, then one for
  // the dense variables (what an unfused graph's lookups do).
  bool emb_fusion = true;
  uint64_t seed = 2026;               // row init and dense init
  float embedding_init_stddev = 0.01f;
  int log_every = 100;
  std::string log_prefix;             // e.g. "worker0"
  // Checkpoints (the chief saves): every save_steps global steps and at the
  // end, under checkpoint_dir, keeping the newest keep_checkpoint_max.
  bool is_chief = true;
  std::string checkpoint_dir;
  int64_t save_steps = 0;
  int64_t incremental_save_steps = 0;  // deltas between full saves; 0: none
  int keep_checkpoint_max = 0;
  std::string optimizer_name;         // recorded in the manifest
  int num_workers = 1;                // trainers in the job, the chief included
  int task_index = 0;                 // this trainer's place among them
  // Resuming a checkpoint saved under another data layout: start at the
  // beginning of the data instead of refusing (Checkpointer).
  bool reset_data_position = false;
  // Advanced as the trainer works, for heartbeats; null: not reported.
  TrainerProgress* progress = nullptr;
  // Called on the compute thread every log_every steps (event files).
  std::function<void(const IntervalReport&)> on_interval;
  // The Prometheus page's metrics, updated by every stage; null: none.
  obs::TrainerMetrics* metrics = nullptr;
  // --timeline N: every N-th local step writes timeline-<global step>.json
  // (obs/timeline.h) into timeline_dir; 0: none.
  int timeline_every = 0;
  std::string timeline_dir;
  // The chief, waiting for the others at the end: how long one may look
  // stuck (rpc::FindStuckTrainer) before the chief gives up with an error.
  double hang_timeout_s = 300;
};

// Where a step's time went, averaged per step (microseconds).
struct StepSplit {
  double wait_us = 0;        // main thread waiting for a pulled batch (data + pull not hidden)
  double compute_us = 0;     // forward + backward
  double handoff_us = 0;     // main thread waiting for the push thread to take the gradients
  double read_us = 0;        // prefetch: waiting for the reader
  double dedup_us = 0;       // prefetch: unique + inverse
  double pull_us = 0;        // prefetch: pull RPCs (including staleness wait)
  double push_us = 0;        // push thread: push RPCs
  uint64_t pull_bytes = 0;   // per step, both directions
  uint64_t push_bytes = 0;
  // Per shard, per step: pull and push, both directions; and of which dense.
  std::vector<uint64_t> shard_bytes;
  std::vector<uint64_t> shard_dense_bytes;
};

struct TrainResult {
  ReadPosition start;                  // where the reader began (a resume point, or the start)
  int64_t local_steps = 0;
  int64_t rows = 0;
  int64_t bad_lines = 0;
  int64_t global_step = 0;
  double seconds = 0;
  double last_loss = 0;                // mean loss over the last log interval
  std::vector<float> losses;           // every step's loss, in order
  // Pulls sent before the previous step's push was done (staging at work;
  // 0 with smartstaged off).
  int64_t pulls_ahead_of_push = 0;
  StepSplit split;
  std::vector<SaveRecord> saves;       // the chief's checkpoints during training
};

// An evaluation's result is what the chief reports (common/report.h).
using EvalResult = EvalReport;

class Trainer {
 public:
  Trainer(const TrainerOptions& options, PsClient* client);

  // Registers the embedding table and the dense variables (every worker
  // computes the same initial values from the seed; the first to register wins).
  Status Setup();
  // TrainSteps, then Finish.
  Status Train(TrainResult* result);
  // The training steps (from the global step the servers hold to --steps,
  // or to the end of the data), the chief saving every save_steps.
  Status TrainSteps(TrainResult* result);
  // After the last step: tells the chief shard this trainer is done (even
  // one that had nothing to train). The chief then waits for every other
  // trainer, failing if one looks stuck for hang_timeout_s, and writes the
  // final checkpoint; result->global_step gets the job's final step.
  Status Finish(TrainResult* result);
  // One pass over `data` (not sharded), pulling read-only: evaluation does
  // not create rows.
  Status Evaluate(const ReaderOptions& data, EvalResult* result);

  DeepFMModel& model() { return model_; }
  const FeatureSpec& spec() const { return *spec_; }

 private:
  struct Step;
  struct TableStep;
  // Each table's unique keys of `st` as the client's parts (rows to pull
  // into, or gradients to push).
  std::vector<PsClient::SparsePart> Parts(Step* st, bool grads) const;
  // Pools the pulled rows into the model's input (forward) and scatters the
  // model's pooled gradients into each table's row gradients (backward), on
  // the compute thread.
  // The step's pull: fused (one request per shard) or one per table.
  Status PullStep(Step* st, const std::vector<float*>& dense_out, WireBytes* bytes);
  // Pools into the model's input, sized for model_rows rows (0: the batch's).
  void PoolForward(Step* st, int model_rows = 0);
  void PoolBackward(Step* st);
  struct Pipeline;
  // The stages; each runs until its input closes or the pipeline stops.
  void RunPrefetch(Pipeline* p, BatchReader* reader);
  void RunPush(Pipeline* p);
  void RunCompute(Pipeline* p, TrainResult* result);
  void Progress(ps::WorkerPhase phase);
  // Writes one traced step's timeline-<global_step>.json into timeline_dir.
  void WriteTimeline(const obs::TraceRecorder& trace, int64_t global_step);
  Status WaitForOtherTrainers();

  TrainerOptions options_;
  const FeatureSpecPtr spec_;
  PsClient* client_;
  DeepFMModel model_;
  Pooling pooling_;
  Checkpointer checkpointer_;
  std::vector<int> tables_;  // client handles, in spec order
  std::vector<int> dense_handles_;
};

}  // namespace deepfm

// Checkpointer: the chief's checkpoints, and every trainer's resume point.
//
// A save is a snapshot (DESIGN.md §9): Cut on shard 0 fixes the step S, every
// shard writes its state at S while training goes on, and the chief commits
// the folder with a manifest that records each trainer's data position at
// S. Periodic saves run on a background thread, one at a time, so the chief
// keeps training while the shards write; a boundary that passes while a
// save is running is folded into the next one.
//
// On resume each trainer starts its reader at the position the checkpoint
// recorded for it, so across an interruption every row of an epoch is
// trained exactly once; a trainer restarted alone rejoins where its previous
// process's last applied push left off. A resume from a checkpoint saved
// under another data layout (batch size, trainer count, data files) is
// refused, naming what changed, unless reset_data_position starts every
// trainer at the beginning of the data. Positions saved under the job's own
// layout always hold, so restarts keep them whatever the flag says.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "common/timing.h"
#include "spec/feature_spec.h"
#include "worker/batch.h"
#include "worker/ps_client.h"

namespace deepfm {

// The job folder's copy of the spec it trains under.
inline constexpr char kFeatureSpecCopy[] = "feature_spec.pbtxt";

struct CheckpointerOptions {
  std::string checkpoint_dir;      // the job folder; empty: never save
  int64_t save_steps = 0;          // 0: only the final save
  // Between full saves, every this many steps an incremental checkpoint of
  // the rows changed since the previous save; 0: none.
  int64_t incremental_save_steps = 0;
  int keep_checkpoint_max = 0;
  std::string optimizer_name;      // recorded in the manifest
  int64_t batch_size = 0;
  int num_workers = 1;
  int task_index = 0;
  std::vector<std::string> data_files;
  // The job's feature spec, recorded in every manifest; a resume under
  // another is refused (CheckFeatureSpec).
  FeatureSpecPtr feature_spec;
  bool reset_data_position = false;
  std::string log_prefix;
};

// What one save cost, for logs and reports.
struct SaveRecord {
  int64_t step = 0;
  bool delta = false;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  double cut_ms = 0;     // the longest any shard held pushes for its cut
  double write_ms = 0;   // the slowest shard's write
  double seconds = 0;    // cut to commit
};

class Checkpointer {
 public:
  Checkpointer(const CheckpointerOptions& options, PsClient* client);
  ~Checkpointer();  // waits for a save in flight
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // A job resumed from a checkpoint must train under the spec it was saved
  // under: its tables, keys and network are what the shards restored.
  // Refuses another, naming what differs (against the job folder's copy,
  // feature_spec.pbtxt, when there is one). OK for a fresh job.
  Status CheckFeatureSpec();

  // Where this trainer's data resumes; *restored_step gets the restored
  // checkpoint's step (0: a fresh job). Also starts the save schedule there.
  Status ResumePosition(ReadPosition* start, int64_t* restored_step);

  // Chief: a push of ours was applied as `step`. Starts a background save
  // when a save_steps boundary (a full save) or an incremental_save_steps
  // boundary (a delta on the previous save) has passed and none is running.
  void AfterStep(int64_t step);
  // The first error of a background save.
  Status error() const;
  // Waits for a background save, then saves now unless the servers are
  // still at the newest saved step.
  Status SaveNow();
  // Waits for a background save; returns its error, if any.
  Status Wait();

  int64_t last_saved() const;
  std::vector<SaveRecord> saves() const;

 private:
  // Cuts on shard 0 unless nothing is new since the last save (*step = -1).
  Status CutIfNew(int64_t* step);
  // Every shard writes the cut at `step` (since_step > 0: only the rows
  // changed after it, as a delta on that save); then the manifest commits it.
  Status WriteAndCommit(int64_t step, int64_t since_step);

  const CheckpointerOptions options_;
  PsClient* const client_;
  const std::string data_fingerprint_;
  Stopwatch cut_watch_;                 // since the newest cut
  mutable std::mutex mu_;
  Status error_ DEEPFM_GUARDED_BY(mu_);
  int64_t last_saved_ DEEPFM_GUARDED_BY(mu_) = 0;
  int64_t last_trigger_ DEEPFM_GUARDED_BY(mu_) = 0;        // step of the last full save's start
  int64_t last_delta_trigger_ DEEPFM_GUARDED_BY(mu_) = 0;
  std::vector<SaveRecord> saves_ DEEPFM_GUARDED_BY(mu_);
  std::atomic<bool> busy_{false};
  std::thread background_;              // touched only by the chief's push thread and Wait
};

}  // namespace deepfm

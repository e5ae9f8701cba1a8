#include "worker/checkpointer.h"

#include <glog/logging.h>

#include <cstdio>
#include <filesystem>

#include "common/checkpoint_manifest.h"
#include "common/timing.h"
#include "worker/data_reader.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;

TrainerDataPosition ToManifest(const ps::TrainerPosition& tp) {
  return TrainerDataPosition{tp.task_index(), FromProto(tp.position())};
}

}  // namespace

Checkpointer::Checkpointer(const CheckpointerOptions& options, PsClient* client)
    : options_(options), client_(client), data_fingerprint_(DataFilesFingerprint(options.data_files)) {}

Checkpointer::~Checkpointer() { (void)Wait(); }

Status Checkpointer::CheckFeatureSpec() {
  if (!options_.feature_spec) return Status::Ok();
  const FeatureSpec& now = *options_.feature_spec;
  std::vector<ps::StatsResponse> stats;
  Status s = client_->Stats(&stats);
  if (!s.ok()) return s;
  const ps::StatsResponse& s0 = stats[0];
  const std::string copy_path =
      options_.checkpoint_dir.empty()
          ? std::string()
          : (std::filesystem::path(options_.checkpoint_dir) / kFeatureSpecCopy).string();
  if (s0.restored_global_step() == 0) {
    // A fresh job: the folder keeps the spec it trains under.
    if (copy_path.empty()) return Status::Ok();
    std::error_code ec;
    std::filesystem::create_directories(options_.checkpoint_dir, ec);
    if (ec) return Internal("cannot create " + options_.checkpoint_dir + ": " + ec.message());
    return WriteFileAtomic(copy_path, "# The feature spec this job trains under (fingerprint " +
                                          now.fingerprint() + ").\n" + now.Text());
  }
  std::string was_fp = s0.restored_feature_spec();
  if (was_fp.empty()) was_fp = CriteoSpec()->fingerprint();  // saved before specs existed
  if (was_fp == now.fingerprint()) return Status::Ok();
  std::string what;
  std::string text;
  FeatureSpecPtr was;
  if (!copy_path.empty() && ReadFile(copy_path, &text).ok() &&
      FeatureSpec::Parse(text, copy_path, &was).ok() && was->fingerprint() == was_fp) {
    what = ": " + DescribeSpecDifference(was->proto(), now.proto()) + " (against " + copy_path + ")";
  }
  return FailedPrecondition(
      "the checkpoint at step " + std::to_string(s0.restored_global_step()) +
      " was trained under another feature spec (fingerprint " + was_fp + ", now '" + now.name() +
      "' " + now.fingerprint() + ")" + what +
      ". Its tables, keys and network belong to that spec: resume with it (--feature_spec), or "
      "start a new job folder");
}

Status Checkpointer::ResumePosition(ReadPosition* start, int64_t* restored_step) {
  *start = ReadPosition();
  std::vector<ps::StatsResponse> stats;
  Status s = client_->Stats(&stats);
  if (!s.ok()) return s;
  const ps::StatsResponse& s0 = stats[0];
  *restored_step = s0.restored_global_step();
  int64_t global_step = 0;
  s = client_->GlobalStep(&global_step);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_saved_ = *restored_step;
    last_trigger_ = last_delta_trigger_ = global_step;
  }
  // A trainer restarted alone: shard 0 holds where its previous process's
  // last applied push left off, recorded under this job's own layout.
  for (const ps::TrainerPosition& tp : s0.live_positions()) {
    if (tp.task_index() != static_cast<uint32_t>(options_.task_index) || tp.session() == 0) continue;
    *start = FromProto(tp.position());
    if (tp.session() != client_->session()) {
      s = client_->CloseStep(tp.step());
      if (!s.ok()) return s;
    }
    LOG(INFO) << options_.log_prefix << ": rejoining at epoch " << start->epoch << ", file "
              << start->file_index << " line " << start->line_number + 1
              << " (after its last applied push, step " << tp.step() << ")";
    return Status::Ok();
  }
  if (*restored_step == 0) return Status::Ok();
  // Resuming a checkpoint: its positions hold only under the layout it was
  // saved with.
  std::string changed;
  auto differs = [&](const std::string& what, const std::string& was, const std::string& now) {
    if (was == now) return;
    changed += (changed.empty() ? "" : "; ") + what + " was " + was + ", now " + now;
  };
  differs("--batch_size", std::to_string(s0.restored_batch_size()),
          std::to_string(options_.batch_size));
  differs("the number of trainers", std::to_string(s0.restored_num_workers()),
          std::to_string(options_.num_workers));
  differs("the data files", "'" + s0.restored_data_files() + "'", "'" + data_fingerprint_ + "'");
  if (!changed.empty()) {
    if (options_.reset_data_position) {
      LOG(WARNING) << options_.log_prefix << ": --reset_data_position: starting at the beginning "
                   << "of the data, since the checkpoint at step " << *restored_step
                   << " was saved under another layout (" << changed << ")";
      return Status::Ok();
    }
    return FailedPrecondition(
        "cannot resume the data where the checkpoint at step " + std::to_string(*restored_step) +
        " left off: " + changed +
        ". Positions recorded under one layout would train rows twice or skip them under another. "
        "Resume with the checkpoint's settings, or pass --reset_data_position to start every "
        "trainer at the beginning of the data");
  }
  for (const ps::TrainerPosition& tp : s0.live_positions()) {
    if (tp.task_index() != static_cast<uint32_t>(options_.task_index)) continue;
    *start = FromProto(tp.position());
    LOG(INFO) << options_.log_prefix << ": resuming the data at epoch " << start->epoch
              << ", file " << start->file_index << " line " << start->line_number + 1
              << " (the checkpoint at step " << *restored_step << ")";
    return Status::Ok();
  }
  // This trainer had nothing applied before the checkpoint.
  return Status::Ok();
}

void Checkpointer::AfterStep(int64_t step) {
  if (options_.checkpoint_dir.empty()) return;
  const int64_t full = options_.save_steps, inc = options_.incremental_save_steps;
  int64_t since = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool full_due = full > 0 && step / full > last_trigger_ / full;
    const bool delta_due = inc > 0 && step / inc > last_delta_trigger_ / inc && last_saved_ > 0;
    if (!full_due && !delta_due) return;
    // The running save covers this boundary's rows; the next boundary
    // starts the next save.
    if (busy_.load()) return;
    last_delta_trigger_ = step;
    if (full_due) {
      last_trigger_ = step;
    } else {
      since = last_saved_;
    }
  }
  if (background_.joinable()) background_.join();
  // The cut is quick (shard 0 holds pushes for about a millisecond) and is
  // taken here, between two of the chief's pushes, so a one-worker job saves
  // exactly at the boundary; the shards' writes and the commit go on in the
  // background while training continues.
  int64_t cut = 0;
  Status s = CutIfNew(&cut);
  if (!s.ok() || cut < 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = s;
    return;
  }
  busy_ = true;
  background_ = std::thread([this, cut, since] {
    Status s = WriteAndCommit(cut, since);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = s;
    }
    busy_ = false;
  });
}

Status Checkpointer::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status Checkpointer::Wait() {
  if (background_.joinable()) background_.join();
  return error();
}

Status Checkpointer::SaveNow() {
  Status s = Wait();
  if (!s.ok()) return s;
  if (options_.checkpoint_dir.empty()) return Status::Ok();
  int64_t cut = 0;
  s = CutIfNew(&cut);
  if (!s.ok() || cut < 0) return s;
  return WriteAndCommit(cut, 0);
}

Status Checkpointer::CutIfNew(int64_t* step) {
  // Nothing new since the last save: no cut, which would make the shards
  // copy rows on write for a snapshot nobody writes.
  Status s = client_->GlobalStep(step);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (*step <= last_saved_) {
      *step = -1;
      return Status::Ok();
    }
  }
  cut_watch_.Reset();
  return client_->Cut(step);
}

Status Checkpointer::WriteAndCommit(int64_t step, int64_t since_step) {
  // The shards write into <their checkpoint root>/<name>, which is this
  // folder on the filesystem every task shares; the chief then commits it.
  const std::string name = CheckpointFolderName(step) + ".tmp";
  const fs::path tmp = fs::path(options_.checkpoint_dir) / name;
  std::error_code ec;
  fs::remove_all(tmp, ec);  // a crashed save's leftovers
  PsClient::SaveResult r;
  Status s = client_->Save(name, step, &r, since_step);
  if (!s.ok()) return s;
  Manifest m;
  m.global_step = step;
  m.num_shards = client_->num_shards();
  m.num_slots = client_->router().num_slots();
  m.optimizer = options_.optimizer_name;
  m.batch_size = options_.batch_size;
  m.num_workers = options_.num_workers;
  m.data_files = data_fingerprint_;
  if (options_.feature_spec) m.feature_spec = options_.feature_spec->fingerprint();
  for (const ps::TrainerPosition& tp : r.positions) m.positions.push_back(ToManifest(tp));
  m.files = r.files;
  if (since_step > 0) {
    m.base = CheckpointFolderName(since_step);
    m.base_step = since_step;
  }
  s = CommitCheckpoint(options_.checkpoint_dir, tmp.string(), m, options_.keep_checkpoint_max);
  if (!s.ok()) return s;
  uint64_t bytes = 0;
  for (const CheckpointFile& f : r.files) bytes += f.bytes;
  const SaveRecord rec{step, since_step > 0, r.rows, bytes, r.max_cut_ms, r.max_write_ms,
                       cut_watch_.Seconds()};
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_saved_ = step;
    saves_.push_back(rec);
  }
  printf("%s saved %s %s/%s: %llu rows, %.1f MB, %.2f s (pushes held %.1f ms for the cut)\n",
         options_.log_prefix.c_str(),
         since_step > 0 ? ("a delta on " + m.base + ",").c_str() : "checkpoint",
         options_.checkpoint_dir.c_str(), CheckpointFolderName(step).c_str(),
         static_cast<unsigned long long>(rec.rows), bytes / 1e6, rec.seconds, rec.cut_ms);
  fflush(stdout);
  return Status::Ok();
}

int64_t Checkpointer::last_saved() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_saved_;
}

std::vector<SaveRecord> Checkpointer::saves() const {
  std::lock_guard<std::mutex> lock(mu_);
  return saves_;
}

}  // namespace deepfm

#include "ps/save_request.h"

#include <glog/logging.h>

#include <chrono>
#include <filesystem>

#include "ps/checkpoint.h"

namespace deepfm::ps {
namespace {

// A Save folder: relative to the shard's checkpoint root, no "..", no
// absolute path, so a client can never make a shard write elsewhere.
Status ResolveSaveFolder(const std::string& root, const std::string& dir, std::string* out) {
  if (root.empty()) {
    return FailedPrecondition(
        "save: this shard has no checkpoint root (--checkpoint_dir); it saves nothing");
  }
  if (dir.empty() || dir.front() == '/') {
    return InvalidArgument("save: folder '" + dir +
                           "' must be a relative name below the checkpoint root");
  }
  for (const auto& part : std::filesystem::path(dir)) {
    if (part == "..") return InvalidArgument("save: folder '" + dir + "' may not contain '..'");
  }
  const std::filesystem::path folder = std::filesystem::path(root) / dir;
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) return Internal("save: cannot create " + folder.string() + ": " + ec.message());
  *out = folder.string();
  return Status::Ok();
}

}  // namespace

Status HandleSaveRequest(Shard& shard, const std::string& checkpoint_root, const SaveRequest& req,
                         SaveResponse* resp) {
  if (req.global_step() < 0) return InvalidArgument("save: global_step is negative");
  if (req.wait_ms() < 0) return InvalidArgument("save: wait_ms is negative");
  if (req.since_step() < 0 || (req.since_step() > 0 && req.since_step() >= req.global_step())) {
    return InvalidArgument("save: since_step " + std::to_string(req.since_step()) +
                           " must be 0 (a full save) or below global_step " +
                           std::to_string(req.global_step()));
  }
  std::string folder;
  Status s = ResolveSaveFolder(checkpoint_root, req.dir(), &folder);
  if (!s.ok()) return s;
  SaveShardOptions so;
  so.force_cut = false;  // a live shard saves only a cut it took in order
  so.since_step = req.since_step() > 0 ? req.since_step() : -1;
  so.wait =
      std::chrono::milliseconds(req.wait_ms() > 0 ? req.wait_ms() : shard.options().cut_wait_ms);
  SaveShardResult r;
  s = SaveShard(shard, folder, req.global_step(), &r, so);
  if (!s.ok()) return s;
  resp->set_file(r.file.name);
  resp->set_bytes(r.file.bytes);
  resp->set_crc32c(r.file.crc32c);
  resp->set_rows(r.rows);
  for (const TrainerPosition& p : r.positions) *resp->add_positions() = p;
  resp->set_cut_ms(r.cut_ms);
  resp->set_write_ms(r.write_ms);
  LOG(INFO) << "shard " << shard.options().shard_index << ": saved step " << req.global_step()
            << ", " << r.rows << " rows to " << folder << "/" << r.file.name << " (" << r.file.bytes
            << " bytes; cut held pushes " << r.cut_ms << " ms, longest stripe copy "
            << r.max_stripe_ms << " ms, write " << r.write_ms << " ms)";
  return Status::Ok();
}

void HandleStatsRequest(const Shard& shard, const std::string& checkpoint_root,
                        StatsResponse* resp) {
  shard.Stats(resp);
  if (!checkpoint_root.empty()) {
    std::error_code ec;
    const std::filesystem::path abs = std::filesystem::absolute(checkpoint_root, ec);
    resp->set_checkpoint_dir(ec ? checkpoint_root : abs.lexically_normal().string());
  }
}

}  // namespace deepfm::ps

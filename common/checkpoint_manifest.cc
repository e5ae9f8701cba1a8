#include "common/checkpoint_manifest.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>

#include "common/crc32c.h"
#include "glog/logging.h"

namespace deepfm {

namespace fs = std::filesystem;

std::string DataFilesFingerprint(const std::vector<std::string>& paths) {
  std::string out;
  for (const std::string& p : paths) {
    if (!out.empty()) out += ',';
    for (char c : fs::path(p).filename().string()) {
      if (c == ' ') out += "%20";
      else if (c == ',') out += "%2C";
      else if (c == '%') out += "%25";
      else out += c;
    }
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    out += ':' + (ec ? std::string("?") : std::to_string(size));
  }
  return out;
}

std::string CheckpointFolderName(int64_t step) { return "ckpt-" + std::to_string(step); }

std::string ShardFileName(uint32_t shard, uint32_t num_shards) {
  return "shard-" + std::to_string(shard) + "-of-" + std::to_string(num_shards) + ".bin";
}

std::string Manifest::Serialize() const {
  std::ostringstream o;
  o << "deepfm-checkpoint " << kVersion << "\n"
    << "global_step " << global_step << "\n"
    << "num_shards " << num_shards << "\n"
    << "num_slots " << num_slots << "\n"
    << "optimizer " << optimizer << "\n"
    << "batch_size " << batch_size << "\n"
    << "num_workers " << num_workers << "\n";
  if (!data_files.empty()) o << "data_files " << data_files << "\n";
  if (!feature_spec.empty()) o << "feature_spec " << feature_spec << "\n";
  if (!base.empty()) o << "base " << base << " " << base_step << "\n";
  for (const TrainerDataPosition& p : positions) {
    o << "position " << p.task_index << " " << p.position << "\n";
  }
  for (const CheckpointFile& f : files) {
    o << "file " << f.name << " " << f.bytes << " " << f.crc32c << "\n";
  }
  o << "end\n";
  return o.str();
}

Status Manifest::Parse(const std::string& text, const std::string& path, Manifest* out) {
  *out = Manifest();
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  bool header = false, end = false;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (!header) {
      int version = 0;
      if (key != "deepfm-checkpoint" || !(ls >> version) || version != kVersion) {
        return DataLoss(where + "not a version " + std::to_string(kVersion) + " checkpoint manifest");
      }
      header = true;
      continue;
    }
    bool ok = true;
    if (key == "global_step") ok = static_cast<bool>(ls >> out->global_step);
    else if (key == "num_shards") ok = static_cast<bool>(ls >> out->num_shards);
    else if (key == "num_slots") ok = static_cast<bool>(ls >> out->num_slots);
    else if (key == "optimizer") ok = static_cast<bool>(ls >> out->optimizer);
    else if (key == "batch_size") ok = static_cast<bool>(ls >> out->batch_size);
    else if (key == "num_workers") ok = static_cast<bool>(ls >> out->num_workers);
    else if (key == "data_files") ok = static_cast<bool>(ls >> out->data_files);
    else if (key == "feature_spec") ok = static_cast<bool>(ls >> out->feature_spec);
    else if (key == "base") {
      int64_t step = 0;
      ok = static_cast<bool>(ls >> out->base >> out->base_step) &&
           ParseCheckpointFolderName(out->base, &step) && step == out->base_step;
    }
    else if (key == "position") {
      TrainerDataPosition p;
      ok = static_cast<bool>(ls >> p.task_index >> p.position);
      out->positions.push_back(p);
    }
    else if (key == "file") {
      CheckpointFile f;
      ok = static_cast<bool>(ls >> f.name >> f.bytes >> f.crc32c);
      if (ok && (f.name.find('/') != std::string::npos || f.name.empty())) ok = false;
      out->files.push_back(f);
    } else if (key == "end") {
      end = true;
      break;
    } else {
      return DataLoss(where + "unknown entry '" + key + "'");
    }
    if (!ok) return DataLoss(where + "malformed '" + key + "' entry");
  }
  if (!header || !end) return DataLoss(path + ": manifest is truncated (no 'end' line)");
  if (out->num_shards == 0 || out->num_slots == 0 || out->files.size() != out->num_shards) {
    return DataLoss(path + ": manifest lists " + std::to_string(out->files.size()) + " files for " +
                    std::to_string(out->num_shards) + " shards");
  }
  return Status::Ok();
}

namespace {

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return fs::path(p).filename().string();
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A name the pointer may hold: one folder directly under the root.
bool IsFolderName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

Status WriteWhole(Env* env, const std::string& path, const std::string& contents, int mode) {
  std::unique_ptr<WritableFile> file;
  Status s = env->NewWritableFile(path, &file, mode);
  if (!s.ok()) return s;
  s = file->Append(contents);
  if (s.ok()) s = file->Sync();
  // Close even after a failure: the descriptor must not outlive the error.
  Status c = file->Close();
  return s.ok() ? c : s;
}

// For deletions that only free space: the commit they follow stands.
void RemoveOrWarn(Env* env, const std::string& path, const char* why) {
  Status s = env->RemoveAll(path);
  if (!s.ok()) LOG(WARNING) << why << ": " << s.message() << "; delete it by hand to free the space";
}

}  // namespace

bool ParseCheckpointFolderName(const std::string& name, int64_t* step) {
  if (name.size() <= 5 || name.compare(0, 5, "ckpt-") != 0 || name.size() > 5 + 18) return false;
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + (name[i] - '0');
  }
  *step = v;
  return true;
}

std::string CheckpointState::Serialize() const {
  std::string out = "latest " + latest + "\n";
  for (const std::string& name : all) out += "all " + name + "\n";
  return out;
}

Status CheckpointState::Parse(const std::string& text, const std::string& path,
                              CheckpointState* out) {
  *out = CheckpointState();
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string key, name, extra;
    if (!(ls >> key)) continue;  // blank
    const bool ok = static_cast<bool>(ls >> name) && !(ls >> extra) && IsFolderName(name);
    if (ok && key == "latest" && out->latest.empty()) {
      out->latest = name;
    } else if (ok && key == "all" && !out->latest.empty()) {
      out->all.push_back(name);
    } else {
      return DataLoss(path + ":" + std::to_string(line_no) +
                      ": malformed (expected 'latest ckpt-<step>' then 'all ckpt-<step>' lines)");
    }
  }
  if (out->latest.empty()) return DataLoss(path + ": malformed (expected 'latest ckpt-<step>')");
  // The old one-line format, or a hand-edited list without the latest.
  if (std::find(out->all.begin(), out->all.end(), out->latest) == out->all.end()) {
    out->all.push_back(out->latest);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode, Env* env) {
  const std::string tmp = path + ".tmp";
  // A leftover would keep its mode: O_CREAT applies `mode` to new files only.
  if (env->FileExists(tmp)) {
    Status s = env->RemoveFile(tmp);
    if (!s.ok()) return s;
  }
  Status s = WriteWhole(env, tmp, contents, mode);
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (s.ok()) s = env->SyncDir(ParentDir(path));
  return s;
}

Status ReadFile(const std::string& path, std::string* contents, Env* env) {
  return env->ReadFile(path, contents);
}

Status ReadCheckpointState(const std::string& root, CheckpointState* out, Env* env) {
  const std::string pointer = Join(root, kCheckpointPointerFile);
  std::string text;
  Status s = env->ReadFile(pointer, &text);
  if (s.code() == Code::kNotFound) {
    return NotFound("no checkpoint under " + root + " (no " + pointer + ")");
  }
  if (!s.ok()) return s;
  return CheckpointState::Parse(text, pointer, out);
}

Status LatestCheckpoint(const std::string& root, std::string* folder, Env* env) {
  CheckpointState state;
  Status s = ReadCheckpointState(root, &state, env);
  if (!s.ok()) return s;
  *folder = Join(root, state.latest);
  return Status::Ok();
}

Status ReadAndVerifyManifest(const std::string& folder, Manifest* out, Env* env) {
  const std::string path = Join(folder, "MANIFEST");
  std::string text;
  Status s = env->ReadFile(path, &text);
  if (!s.ok()) return DataLoss("checkpoint " + folder + " is incomplete: " + s.message());
  s = Manifest::Parse(text, path, out);
  if (!s.ok()) return s;
  constexpr size_t kChunk = 1 << 20;
  std::string scratch(kChunk, '\0');
  for (const CheckpointFile& f : out->files) {
    const std::string fp = Join(folder, f.name);
    uint64_t size = 0;
    s = env->FileSize(fp, &size);
    if (!s.ok()) return DataLoss("checkpoint file missing: " + fp + " (" + s.message() + ")");
    if (size != f.bytes) {
      return DataLoss("checkpoint file " + fp + " is " + std::to_string(size) +
                      " bytes, manifest says " + std::to_string(f.bytes) + " (truncated?)");
    }
    std::unique_ptr<SequentialFile> file;
    s = env->NewSequentialFile(fp, &file);
    if (!s.ok()) return DataLoss("checkpoint file unreadable: " + s.message());
    uint32_t crc = 0;
    uint64_t read = 0;
    while (true) {
      std::string_view piece;
      s = file->Read(kChunk, &piece, scratch.data());
      if (!s.ok()) return DataLoss("checkpoint file unreadable: " + s.message());
      crc = Crc32cExtend(crc, piece.data(), piece.size());
      read += piece.size();
      if (piece.size() < kChunk) break;
    }
    if (read != f.bytes) {
      return DataLoss("checkpoint file " + fp + " changed size while read (" +
                      std::to_string(read) + " bytes, manifest says " + std::to_string(f.bytes) +
                      ")");
    }
    if (crc != f.crc32c) {
      return DataLoss("checkpoint file " + fp + " fails its checksum: corrupt; refusing to load it");
    }
  }
  return Status::Ok();
}

Status ReadCheckpointChain(const std::string& folder, bool verify, std::vector<ChainLink>* chain,
                           Env* env) {
  chain->clear();
  for (std::string at = folder;;) {
    ChainLink link{at, Manifest()};
    Status s;
    if (verify) {
      s = ReadAndVerifyManifest(at, &link.manifest, env);
    } else {
      const std::string path = Join(at, "MANIFEST");
      std::string text;
      s = env->ReadFile(path, &text);
      if (!s.ok()) return DataLoss("checkpoint " + at + " is incomplete: " + s.message());
      s = Manifest::Parse(text, path, &link.manifest);
    }
    if (!s.ok()) return s;
    const bool delta = link.manifest.is_delta();
    const std::string base = Join(ParentDir(at), link.manifest.base);
    chain->push_back(std::move(link));
    if (!delta) break;
    if (chain->size() > 100000) return DataLoss(folder + ": its chain of deltas does not end");
    at = base;
  }
  std::reverse(chain->begin(), chain->end());
  return Status::Ok();
}

Status CommitCheckpoint(const std::string& root, const std::string& tmp_folder,
                        const Manifest& manifest, int keep_max, Env* env) {
  const std::string name = CheckpointFolderName(manifest.global_step);
  const std::string final_path = Join(root, name);
  // The list so far. A damaged pointer is about to be replaced: its
  // checkpoints become orphans, which retention never deletes.
  CheckpointState old;
  Status s = ReadCheckpointState(root, &old, env);
  if (s.code() == Code::kNotFound || s.code() == Code::kDataLoss) {
    old = CheckpointState();
  } else if (!s.ok()) {
    return s;
  }

  s = WriteWhole(env, Join(tmp_folder, "MANIFEST"), manifest.Serialize(), 0644);
  if (!s.ok()) return s;
  // The MANIFEST's entry, and the data files', must not vanish after the
  // folder is renamed into place.
  s = env->SyncDir(tmp_folder);
  if (!s.ok()) return s;

  if (env->FileExists(final_path)) {
    // A re-save of the same step: swap, so ckpt-<step> always exists (the
    // pointer may name it); the old one then lies under tmp_folder.
    s = env->RenameExchange(tmp_folder, final_path);
    if (s.code() == Code::kUnimplemented) {
      const std::string aside = final_path + ".replaced.tmp";
      LOG(WARNING) << s.message() << "; replacing " << final_path
                   << " in two renames instead: a crash between them leaves no " << name
                   << " (restore then falls back to an older checkpoint)";
      s = env->RemoveAll(aside);
      if (s.ok()) s = env->RenameFile(final_path, aside);
      if (s.ok()) s = env->RenameFile(tmp_folder, final_path);
      if (s.ok()) s = env->SyncDir(root);
      if (s.ok()) RemoveOrWarn(env, aside, "the replaced checkpoint");
    } else if (s.ok()) {
      s = env->SyncDir(root);
      if (s.ok()) RemoveOrWarn(env, tmp_folder, "the replaced checkpoint");
    }
  } else {
    s = env->RenameFile(tmp_folder, final_path);
    if (s.ok()) s = env->SyncDir(root);
  }
  if (!s.ok()) return s;

  CheckpointState next;
  next.latest = name;
  for (const std::string& n : old.all) {
    if (n != name && env->FileExists(Join(root, n))) next.all.push_back(n);
  }
  next.all.push_back(name);
  // The oldest beyond keep_max expire, except the bases a kept delta is
  // applied on: a delta without its chain back to a full save is useless.
  std::vector<std::string> expired;
  if (keep_max > 0 && next.all.size() > static_cast<size_t>(keep_max)) {
    const size_t excess = next.all.size() - static_cast<size_t>(keep_max);
    std::vector<std::string> kept(next.all.begin() + excess, next.all.end());
    std::vector<std::string> needed;
    for (const std::string& k : kept) {
      std::vector<ChainLink> chain;
      // A kept delta whose chain is already broken needs nothing.
      if (!ReadCheckpointChain(Join(root, k), /*verify=*/false, &chain, env).ok()) continue;
      for (const ChainLink& link : chain) needed.push_back(BaseName(link.folder));
    }
    std::vector<std::string> still;
    for (size_t i = 0; i < excess; ++i) {
      const std::string& n = next.all[i];
      if (std::find(needed.begin(), needed.end(), n) != needed.end()) {
        still.push_back(n);
      } else {
        expired.push_back(n);
      }
    }
    still.insert(still.end(), kept.begin(), kept.end());
    next.all = std::move(still);
  }
  s = WriteFileAtomic(Join(root, kCheckpointPointerFile), next.Serialize(), 0644, env);
  if (!s.ok()) return s;

  // Committed. What follows only frees space: a failure is worth a warning,
  // not a failed save.
  for (const std::string& n : expired) RemoveOrWarn(env, Join(root, n), "retention");
  std::vector<std::string> names;
  s = env->ListDir(root, &names);
  if (!s.ok()) LOG(WARNING) << "cleaning up crashed saves: " << s.message();
  const std::string committing = BaseName(tmp_folder);
  for (const std::string& n : names) {
    if (n.rfind("ckpt-", 0) != 0 || !EndsWith(n, ".tmp") || n == committing) continue;
    RemoveOrWarn(env, Join(root, n), "cleaning up a crashed save");
  }
  return Status::Ok();
}

Status FindNewestGoodCheckpoint(const std::string& root, std::string* folder, Env* env) {
  std::vector<std::string> candidates;
  CheckpointState state;
  if (ReadCheckpointState(root, &state, env).ok()) {
    candidates.assign(state.all.rbegin(), state.all.rend());
  }
  std::vector<std::pair<int64_t, std::string>> orphans;
  std::vector<std::string> names;
  Status s = env->ListDir(root, &names);
  if (!s.ok()) return s;
  for (const std::string& n : names) {
    int64_t step = 0;
    if (ParseCheckpointFolderName(n, &step) &&
        std::find(candidates.begin(), candidates.end(), n) == candidates.end()) {
      orphans.emplace_back(step, n);
    }
  }
  std::sort(orphans.rbegin(), orphans.rend());
  for (const auto& o : orphans) candidates.push_back(o.second);
  std::string tried;
  for (const std::string& n : candidates) {
    // A delta is only as good as the chain of saves it builds on.
    std::vector<ChainLink> chain;
    if (ReadCheckpointChain(Join(root, n), /*verify=*/true, &chain, env).ok()) {
      *folder = Join(root, n);
      return Status::Ok();
    }
    tried += (tried.empty() ? "" : ", ") + n;
  }
  return NotFound("no checkpoint under " + root + " verifies" +
                  (tried.empty() ? std::string(" (it holds none)") : " (tried " + tried + ")"));
}

Status CorruptLatestCheckpointError(const std::string& root, const std::string& latest,
                                    const Status& why, Env* env) {
  std::string m = why.message() + ". Refusing to resume from " + latest + ". ";
  std::string good;
  if (FindNewestGoodCheckpoint(root, &good, env).ok() && good != latest) {
    m += "The newest checkpoint that verifies is " + good + ": to resume from it (the steps " +
         "after it are lost), restart with " + kRestoreCheckpointFlag + "=" + BaseName(good) + ".";
  } else {
    m += "No other checkpoint under " + root + " verifies: restore the folder from a copy, " +
         "or start a new job in another folder.";
  }
  return DataLoss(m);
}

}  // namespace deepfm

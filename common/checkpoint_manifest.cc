#include "common/checkpoint_manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/crc32c.h"

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
  for (const TrainerDataPosition& p : positions) {
    o << "position " << p.task_index << " " << p.epoch << " " << p.file_index << " " << p.offset
      << " " << p.line_number << " " << p.line_index << " " << p.epoch_rows << "\n";
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
    else if (key == "position") {
      TrainerDataPosition p;
      ok = static_cast<bool>(ls >> p.task_index >> p.epoch >> p.file_index >> p.offset >>
                             p.line_number >> p.line_index >> p.epoch_rows);
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

Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // O_CREAT keeps an existing file's mode
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return Internal("cannot create " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      return Internal("writing " + tmp + ": " + err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Internal("flushing " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("renaming " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status ReadFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  *contents = ss.str();
  return Status::Ok();
}

Status LatestCheckpoint(const std::string& root, std::string* folder) {
  std::string text;
  const std::string pointer = (fs::path(root) / "checkpoint").string();
  if (!fs::exists(pointer)) return NotFound("no checkpoint under " + root + " (no " + pointer + ")");
  Status s = ReadFile(pointer, &text);
  if (!s.ok()) return s;
  std::istringstream in(text);
  std::string key, name;
  if (!(in >> key >> name) || key != "latest" || name.find('/') != std::string::npos) {
    return DataLoss(pointer + ": malformed (expected 'latest ckpt-<step>')");
  }
  *folder = (fs::path(root) / name).string();
  return Status::Ok();
}

Status ReadAndVerifyManifest(const std::string& folder, Manifest* out) {
  const std::string path = (fs::path(folder) / "MANIFEST").string();
  std::string text;
  Status s = ReadFile(path, &text);
  if (!s.ok()) return DataLoss("checkpoint " + folder + " is incomplete: " + s.message());
  s = Manifest::Parse(text, path, out);
  if (!s.ok()) return s;
  for (const CheckpointFile& f : out->files) {
    const std::string fp = (fs::path(folder) / f.name).string();
    std::string data;
    s = ReadFile(fp, &data);
    if (!s.ok()) return DataLoss("checkpoint file missing: " + fp);
    if (data.size() != f.bytes) {
      return DataLoss("checkpoint file " + fp + " is " + std::to_string(data.size()) +
                      " bytes, manifest says " + std::to_string(f.bytes) + " (truncated?)");
    }
    if (Crc32c(data.data(), data.size()) != f.crc32c) {
      return DataLoss("checkpoint file " + fp + " fails its checksum: corrupt; refusing to load it");
    }
  }
  return Status::Ok();
}

Status CommitCheckpoint(const std::string& root, const std::string& tmp_folder,
                        const Manifest& manifest, int keep_max) {
  Status s = WriteFileAtomic((fs::path(tmp_folder) / "MANIFEST").string(), manifest.Serialize());
  if (!s.ok()) return s;
  const fs::path final_path = fs::path(root) / CheckpointFolderName(manifest.global_step);
  std::error_code ec;
  fs::remove_all(final_path, ec);  // a re-save of the same step replaces it
  fs::rename(tmp_folder, final_path, ec);
  if (ec) return Internal("renaming " + tmp_folder + " to " + final_path.string() + ": " + ec.message());
  s = WriteFileAtomic((fs::path(root) / "checkpoint").string(),
                      "latest " + CheckpointFolderName(manifest.global_step) + "\n");
  if (!s.ok()) return s;
  if (keep_max > 0) {
    std::vector<std::pair<int64_t, fs::path>> all;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("ckpt-", 0) != 0 || n.find(".tmp") != std::string::npos) continue;
      char* end = nullptr;
      const long long step = std::strtoll(n.c_str() + 5, &end, 10);
      if (end && *end == '\0') all.emplace_back(step, e.path());
    }
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i + keep_max < all.size(); ++i) fs::remove_all(all[i].second, ec);
  }
  return Status::Ok();
}

}  // namespace deepfm

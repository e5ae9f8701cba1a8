#include "ps/checkpoint.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/crc32c.h"
#include "common/routing.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'D', 'F', 'M', 'S', 'H', 'R', 'D', '0' + kShardFileVersion};
static_assert(kShardFileVersion >= 1 && kShardFileVersion <= 9, "the version is one magic byte");

// Streams bytes to a file while computing their CRC-32C.
class FileSink {
 public:
  explicit FileSink(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {}
  ~FileSink() {
    if (f_) std::fclose(f_);
  }
  bool ok() const { return f_ != nullptr && !failed_; }
  void Put(const void* data, size_t n) {
    if (!ok() || n == 0) return;
    if (std::fwrite(data, 1, n, f_) != n) failed_ = true;
    crc_ = Crc32cExtend(crc_, data, n);
    bytes_ += n;
  }
  template <typename T>
  void Pod(const T& v) {
    Put(&v, sizeof(T));
  }
  void Str(const std::string& s) {
    Pod(static_cast<uint32_t>(s.size()));
    Put(s.data(), s.size());
  }
  Status Close() {
    if (!f_) return Internal("cannot create " + path_ + ": " + std::strerror(errno));
    const bool flushed = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (failed_ || !flushed || !closed) return Internal("writing " + path_ + " failed (disk full?)");
    return Status::Ok();
  }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  FILE* f_;
  bool failed_ = false;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
};

// Bounds-checked reader over a whole file in memory.
class Source {
 public:
  Source(const std::string& data, const std::string& path) : data_(data), path_(path) {}
  template <typename T>
  bool Pod(T* v) {
    return Bytes(v, sizeof(T));
  }
  bool Bytes(void* out, size_t n) {
    if (pos_ + n > data_.size()) return false;
    std::memcpy(out, data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n;
    if (!Pod(&n) || pos_ + n > data_.size()) return false;
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Skip(size_t n) {
    if (pos_ + n > data_.size()) return false;
    pos_ += n;
    return true;
  }
  const char* Here() const { return data_.data() + pos_; }
  Status Corrupt(const std::string& what) const {
    return DataLoss(path_ + ": " + what + " at byte " + std::to_string(pos_) +
                    "; the file does not match its format");
  }

 private:
  const std::string& data_;
  std::string path_;
  size_t pos_ = 0;
};

}  // namespace

Status SaveShard(Shard& shard, const std::string& dir, int64_t global_step, CheckpointFile* file,
                 uint64_t* rows) {
  const ShardOptions& so = shard.options();
  const std::string name = ShardFileName(so.shard_index, so.num_shards);
  const std::string tmp = (fs::path(dir) / (name + ".tmp")).string();
  const Router& router = shard.router();
  FileSink out(tmp);
  out.Put(kMagic, sizeof(kMagic));
  out.Pod(so.shard_index);
  out.Pod(so.num_shards);
  out.Pod(router.num_slots());
  out.Pod(global_step);
  const std::vector<EmbeddingTable*> tables = shard.tables();
  out.Pod(static_cast<uint32_t>(tables.size()));
  *rows = 0;
  for (EmbeddingTable* t : tables) {
    const TableOptions& o = t->options();
    const int dim = o.dim, sf = t->slot_floats();
    const size_t record = 8 + sizeof(RowMeta) + sizeof(float) * (dim + sf);
    // Group records by slot in memory (about the file's size), then write
    // slot by slot so a restore can skip whole slots it does not own.
    std::vector<std::string> by_slot(router.num_slots());
    uint64_t n = 0;
    t->ForEachRow([&](uint64_t key, const float* values, const float* slots, RowMeta meta) {
      std::string& b = by_slot[router.SlotOfKey(key)];
      const size_t at = b.size();
      b.resize(at + record);
      char* p = b.data() + at;
      std::memcpy(p, &key, 8);
      std::memcpy(p + 8, &meta, sizeof(meta));
      std::memcpy(p + 8 + sizeof(meta), values, sizeof(float) * dim);
      std::memcpy(p + 8 + sizeof(meta) + sizeof(float) * dim, slots, sizeof(float) * sf);
      ++n;
    });
    const VariableOptState st = t->opt_state();
    out.Str(o.name);
    out.Pod(static_cast<uint32_t>(dim));
    out.Pod(static_cast<uint32_t>(sf));
    out.Pod(o.seed);
    out.Pod(o.init_stddev);
    out.Pod(st.beta1_power);
    out.Pod(st.beta2_power);
    out.Pod(n);
    for (uint32_t slot = 0; slot < by_slot.size(); ++slot) {
      if (by_slot[slot].empty()) continue;
      out.Pod(slot);
      out.Pod(static_cast<uint32_t>(by_slot[slot].size() / record));
      out.Put(by_slot[slot].data(), by_slot[slot].size());
      std::string().swap(by_slot[slot]);
    }
    *rows += n;
  }
  shard.dense().ForEach([&](uint32_t, const DenseVariable& v) {
    out.Str(v.name);
    out.Pod(static_cast<uint32_t>(v.shape.size()));
    for (int64_t d : v.shape) out.Pod(d);
    out.Pod(static_cast<uint64_t>(v.values.size()));
    out.Put(v.values.data(), v.values.size() * sizeof(float));
    out.Pod(static_cast<uint64_t>(v.slots.size()));
    out.Put(v.slots.data(), v.slots.size() * sizeof(float));
    out.Pod(v.opt_state.beta1_power);
    out.Pod(v.opt_state.beta2_power);
  });
  // The dense count goes last so the writer never holds every variable's lock at once.
  out.Pod(static_cast<uint32_t>(shard.dense().num_variables()));
  Status s = out.Close();
  if (!s.ok()) return s;
  const std::string final_path = (fs::path(dir) / name).string();
  if (std::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return Internal("renaming " + tmp + " to " + final_path + ": " + std::strerror(errno));
  }
  file->name = name;
  file->bytes = out.bytes();
  file->crc32c = out.crc();
  return Status::Ok();
}

Status RestoreShard(Shard* shard, const std::string& folder, uint64_t* rows) {
  Manifest m;
  Status s = ReadAndVerifyManifest(folder, &m);
  if (!s.ok()) return s;
  const ShardOptions& so = shard->options();
  const std::string opt_name = OptimizerName(shard->optimizer().type());
  if (m.optimizer != opt_name) {
    return FailedPrecondition("checkpoint " + folder + " was saved with optimizer " + m.optimizer +
                              ", this shard runs " + opt_name +
                              "; restart with --optimizer=" + m.optimizer);
  }
  if (m.num_slots != so.num_slots) {
    return FailedPrecondition("checkpoint " + folder + " routes keys over " +
                              std::to_string(m.num_slots) + " slots, this shard over " +
                              std::to_string(so.num_slots) +
                              "; the slot count is fixed for the life of a model");
  }
  const Router& router = shard->router();
  *rows = 0;
  for (uint32_t fi = 0; fi < m.files.size(); ++fi) {
    const std::string path = (fs::path(folder) / m.files[fi].name).string();
    std::string data;
    s = ReadFile(path, &data);
    if (!s.ok()) return s;
    Source in(data, path);
    char magic[8];
    uint32_t file_shard, file_shards, num_slots, num_tables;
    int64_t step;
    if (!in.Bytes(magic, 8) || std::memcmp(magic, kMagic, 7) != 0) return in.Corrupt("bad magic");
    if (magic[7] != kMagic[7]) {
      return FailedPrecondition(path + " is shard file format version " + std::string(1, magic[7]) +
                                "; this build reads version " + std::to_string(kShardFileVersion));
    }
    if (!in.Pod(&file_shard) || !in.Pod(&file_shards) || !in.Pod(&num_slots) || !in.Pod(&step) ||
        !in.Pod(&num_tables)) {
      return in.Corrupt("truncated header");
    }
    if (num_slots != m.num_slots) return in.Corrupt("slot count differs from the manifest");
    // Per-variable optimizer state comes from the file of the same shard when
    // the shard count is unchanged, else from the first file.
    const bool state_source = (file_shards == so.num_shards) ? (file_shard == so.shard_index) : fi == 0;
    for (uint32_t ti = 0; ti < num_tables; ++ti) {
      std::string name;
      uint32_t dim, sf;
      uint64_t seed, n;
      float stddev;
      VariableOptState st;
      if (!in.Str(&name) || !in.Pod(&dim) || !in.Pod(&sf) || !in.Pod(&seed) || !in.Pod(&stddev) ||
          !in.Pod(&st.beta1_power) || !in.Pod(&st.beta2_power) || !in.Pod(&n)) {
        return in.Corrupt("truncated table header");
      }
      RegisterTableRequest req;
      req.mutable_spec()->set_name(name);
      req.mutable_spec()->set_dim(dim);
      req.mutable_spec()->set_seed(seed);
      req.mutable_spec()->set_init_stddev(stddev);
      RegisterTableResponse resp;
      s = shard->RegisterTable(req, &resp);
      if (!s.ok()) return s;
      EmbeddingTable* t = shard->table(resp.table_id());
      if (static_cast<uint32_t>(t->slot_floats()) != sf) {
        return in.Corrupt("table '" + name + "' has " + std::to_string(sf) +
                          " optimizer slot floats per row, this optimizer needs " +
                          std::to_string(t->slot_floats()));
      }
      if (state_source) t->set_opt_state(st);
      const size_t record = 8 + sizeof(RowMeta) + sizeof(float) * (dim + sf);
      for (uint64_t seen = 0; seen < n;) {
        uint32_t slot, count;
        if (!in.Pod(&slot) || !in.Pod(&count) || slot >= num_slots || count == 0 || seen + count > n) {
          return in.Corrupt("bad slot group in table '" + name + "'");
        }
        if (router.ShardOfSlot(slot) != so.shard_index) {
          if (!in.Skip(record * count)) return in.Corrupt("truncated rows");
        } else {
          const char* p = in.Here();
          if (!in.Skip(record * count)) return in.Corrupt("truncated rows");
          for (uint32_t r = 0; r < count; ++r, p += record) {
            uint64_t key;
            RowMeta meta;
            std::memcpy(&key, p, 8);
            std::memcpy(&meta, p + 8, sizeof(meta));
            // Rows are float-aligned within the record only by luck; copy out.
            std::vector<float> v(dim + sf);
            std::memcpy(v.data(), p + 8 + sizeof(meta), sizeof(float) * (dim + sf));
            t->Upsert(key, v.data(), v.data() + dim, meta);
            ++*rows;
          }
        }
        seen += count;
      }
    }
    // Dense variables up to the trailing count.
    while (true) {
      const char* at = in.Here();
      if (at == data.data() + data.size() - sizeof(uint32_t)) break;
      std::string name;
      uint32_t rank;
      if (!in.Str(&name) || !in.Pod(&rank) || rank > DenseStore::kMaxRank) return in.Corrupt("bad dense header");
      std::vector<int64_t> shape(rank);
      for (auto& d : shape) {
        if (!in.Pod(&d)) return in.Corrupt("truncated dense shape");
      }
      uint64_t nv, ns;
      if (!in.Pod(&nv) || nv > data.size()) return in.Corrupt("bad dense size");
      std::vector<float> values(nv);
      if (!in.Bytes(values.data(), nv * sizeof(float)) || !in.Pod(&ns) || ns > data.size()) {
        return in.Corrupt("truncated dense values");
      }
      std::vector<float> slots(ns);
      VariableOptState st;
      if (!in.Bytes(slots.data(), ns * sizeof(float)) || !in.Pod(&st.beta1_power) ||
          !in.Pod(&st.beta2_power)) {
        return in.Corrupt("truncated dense slots");
      }
      if (router.ShardOfName(name) != so.shard_index) continue;
      uint32_t id;
      bool created;
      s = shard->dense().Register(name, shape, values, &id, &created);
      if (!s.ok()) return s;
      s = shard->dense().Assign(id, values, slots, st);
      if (!s.ok()) return DataLoss(path + ": " + s.message());
    }
  }
  StepRequest req;
  req.set_increment(m.global_step - shard->global_step());
  StepResponse resp;
  s = shard->GlobalStep(req, &resp);
  if (s.ok()) shard->set_restored_global_step(m.global_step);
  return s;
}

}  // namespace deepfm::ps

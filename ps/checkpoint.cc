#include "ps/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "common/crc32c.h"
#include "common/dense_partition.h"
#include "common/routing.h"

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'D', 'F', 'M', 'S', 'H', 'R', 'D', '0' + kShardFileVersion};
static_assert(kShardFileVersion >= 1 && kShardFileVersion <= 9, "the version is one magic byte");
// A file with no moving-average variable is written as version 4, byte for
// byte what builds before version 5 wrote (and still read).
constexpr int kVersionWithoutMovingAverages = 4;
// Version 2 differs only in its dense records: whole variables, no offset.
constexpr int kOldestReadableVersion = 2;

// Streams bytes to a file (through the Env seam) in 1 MiB appends while
// computing their CRC-32C. The first failure sticks; Close reports it.
class FileSink {
 public:
  static constexpr size_t kChunk = 1 << 20;
  FileSink(Env* env, const std::string& path) : path_(path) {
    status_ = env->NewWritableFile(path, &file_);
    buf_.reserve(kChunk);
  }
  bool ok() const { return status_.ok(); }
  void Put(const void* data, size_t n) {
    if (!status_.ok() || n == 0) return;
    crc_ = Crc32cExtend(crc_, data, n);
    bytes_ += n;
    buf_.append(static_cast<const char*>(data), n);
    if (buf_.size() >= kChunk) Flush();
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
    Flush();
    if (status_.ok()) status_ = file_->Sync();
    if (file_) {
      Status closed = file_->Close();
      if (status_.ok()) status_ = closed;
    }
    if (!status_.ok()) {
      return Status(status_.code(), "writing " + path_ + " failed: " + status_.message());
    }
    return Status::Ok();
  }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  void Flush() {
    if (status_.ok() && !buf_.empty()) status_ = file_->Append(buf_);
    buf_.clear();
  }

  std::string path_;
  std::string buf_;
  std::unique_ptr<WritableFile> file_;
  Status status_;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
};

// Reads a file front to back through a buffer, checking bounds against the
// size the manifest gives and computing the CRC-32C of every byte, skipped
// ones included, so each file is read exactly once.
class StreamSource {
 public:
  StreamSource(const std::string& path, uint64_t size)
      : path_(path), size_(size), f_(std::fopen(path.c_str(), "rb")), buf_(1 << 20) {}
  ~StreamSource() {
    if (f_) std::fclose(f_);
  }
  bool open() const { return f_ != nullptr; }
  template <typename T>
  bool Pod(T* v) {
    return Bytes(v, sizeof(T));
  }
  bool Bytes(void* out, size_t n) {
    char* dst = static_cast<char*>(out);
    while (n > 0) {
      if (at_ == end_ && !Fill()) return false;
      const size_t k = std::min(n, end_ - at_);
      if (dst) {
        std::memcpy(dst, buf_.data() + at_, k);
        dst += k;
      }
      at_ += k;
      n -= k;
    }
    return true;
  }
  bool Skip(size_t n) { return Bytes(nullptr, n); }
  // Bytes of the file not read yet: bounds a count read from it.
  uint64_t remaining() const { return size_ - pos(); }
  bool Str(std::string* s) {
    uint32_t n;
    if (!Pod(&n) || n > size_ - pos()) return false;
    s->resize(n);
    return Bytes(s->data(), n);
  }
  uint64_t pos() const { return consumed_ - (end_ - at_); }
  // The whole file has been read and its bytes match `crc`.
  Status Finish(uint32_t crc) {
    char extra;
    if (pos() != size_ || Bytes(&extra, 1))
      return Corrupt("trailing bytes after the dense variables");
    if (crc_ != crc) {
      return DataLoss("checkpoint file " + path_ +
                      " fails its checksum: corrupt; refusing to load it");
    }
    return Status::Ok();
  }
  Status Corrupt(const std::string& what) const {
    return DataLoss(path_ + ": " + what + " at byte " + std::to_string(pos()) +
                    "; the file does not match its format");
  }

 private:
  bool Fill() {
    if (consumed_ >= size_) return false;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf_.size(), size_ - consumed_));
    const size_t got = std::fread(buf_.data(), 1, want, f_);
    if (got == 0) return false;
    crc_ = Crc32cExtend(crc_, buf_.data(), got);
    consumed_ += got;
    at_ = 0;
    end_ = got;
    return true;
  }

  std::string path_;
  uint64_t size_;
  FILE* f_;
  std::vector<char> buf_;
  size_t at_ = 0, end_ = 0;
  uint64_t consumed_ = 0;
  uint32_t crc_ = 0;
};

constexpr uint32_t kEndOfRows = 0xffffffffu;

void PutOptState(FileSink& out, const VariableOptState& st) {
  out.Pod(static_cast<uint8_t>(st.started));
  out.Pod(st.beta1_power);
  out.Pod(st.beta2_power);
}

bool GetOptState(StreamSource& in, VariableOptState* st) {
  uint8_t started;
  if (!in.Pod(&started) || !in.Pod(&st->beta1_power) || !in.Pod(&st->beta2_power)) return false;
  st->started = started != 0;
  return true;
}

// Writes one stripe's records (as CopySnapshotStripe gives them) grouped by
// routing slot: (slot, count, records) per slot present.
void PutSlotGroups(FileSink& out, const Router& router, const RecordBuffer& records, size_t record,
                   std::vector<std::pair<uint32_t, uint32_t>>* order) {
  const size_t n = records.size() / record;
  order->clear();
  for (size_t i = 0; i < n; ++i) {
    uint64_t key;
    std::memcpy(&key, records.data() + i * record, 8);
    order->emplace_back(router.SlotOfKey(key), static_cast<uint32_t>(i));
  }
  std::sort(order->begin(), order->end());
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && (*order)[j].first == (*order)[i].first) ++j;
    out.Pod((*order)[i].first);
    out.Pod(static_cast<uint32_t>(j - i));
    for (size_t k = i; k < j; ++k)
      out.Put(records.data() + size_t{(*order)[k].second} * record, record);
    i = j;
  }
}

double MillisSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Status SaveShard(Shard& shard, const std::string& dir, int64_t global_step, SaveShardResult* result,
                 const SaveShardOptions& options) {
  *result = SaveShardResult();
  std::shared_ptr<const ShardSnapshot> snap;
  Status s = shard.AwaitSnapshot(global_step, options.wait, options.force_cut, &snap);
  if (!s.ok()) return s;
  const auto start = std::chrono::steady_clock::now();
  const ShardOptions& so = shard.options();
  const std::string name = ShardFileName(so.shard_index, so.num_shards);
  const std::string tmp = (fs::path(dir) / (name + ".tmp")).string();
  const Router& router = shard.router();
  Env* env = options.env ? options.env : Env::Default();
  FileSink out(env, tmp);
  const bool any_moving = std::any_of(snap->dense.begin(), snap->dense.end(),
                                      [](const ShardSnapshot::Dense& v) { return v.update.moving_average; });
  const int version = any_moving ? kShardFileVersion : kVersionWithoutMovingAverages;
  char magic[8];
  std::memcpy(magic, kMagic, sizeof(magic));
  magic[7] = static_cast<char>('0' + version);
  out.Put(magic, sizeof(magic));
  out.Pod(so.shard_index);
  out.Pod(so.num_shards);
  out.Pod(router.num_slots());
  out.Pod(global_step);
  out.Pod(static_cast<uint32_t>(snap->tables.size()));
  RecordBuffer records;
  std::vector<std::pair<uint32_t, uint32_t>> order;
  for (const ShardSnapshot::Table& st : snap->tables) {
    EmbeddingTable* t = st.table;
    const TableOptions& o = t->options();
    out.Str(o.name);
    out.Pod(static_cast<uint32_t>(o.dim));
    out.Pod(static_cast<uint32_t>(t->slot_floats()));
    out.Pod(o.seed);
    out.Pod(o.init_stddev);
    PutOptState(out, st.state);
    // Admission state at the cut: what a key still needs before it is admitted.
    const FilterKind kind = o.ev.admission() ? o.ev.filter : FilterKind::kNone;
    out.Pod(static_cast<uint8_t>(kind));
    if (kind == FilterKind::kCounter) {
      std::vector<std::pair<uint64_t, uint32_t>> pending;
      t->ForEachSnapshotPendingKey(
          [&](uint64_t key, uint32_t count) { pending.emplace_back(key, count); });
      out.Pod(static_cast<uint64_t>(pending.size()));
      for (const auto& [key, count] : pending) {
        out.Pod(key);
        out.Pod(count);
      }
    } else if (kind == FilterKind::kBloom) {
      const std::vector<uint16_t> bloom = t->SnapshotBloomCounters();
      out.Pod(static_cast<uint64_t>(bloom.size()));
      out.Put(bloom.data(), bloom.size() * sizeof(uint16_t));
    }
    // A delta records the rows evicted since its base, so a restored chain
    // does not bring them back; a full file holds no evicted row.
    std::vector<uint64_t> evicted;
    if (options.since_step >= 0) t->EvictedKeys(options.since_step, global_step, &evicted);
    out.Pod(static_cast<uint64_t>(evicted.size()));
    out.Put(evicted.data(), evicted.size() * sizeof(uint64_t));
    uint64_t n = 0;
    for (int stripe = 0; stripe < t->num_stripes(); ++stripe) {
      records.clear();
      const int64_t got = t->CopySnapshotStripe(st.generation, stripe, &records, options.since_step,
                                                &result->max_stripe_ms);
      if (got < 0) {
        shard.EndSnapshot(snap);
        return Status(Code::kAborted,
                      "save of step " + std::to_string(global_step) +
                          ": a newer snapshot cut superseded it while it was written");
      }
      PutSlotGroups(out, router, records, t->record_bytes(), &order);
      n += static_cast<uint64_t>(got);
    }
    out.Pod(kEndOfRows);
    out.Pod(n);
    result->rows += n;
  }
  shard.EndSnapshot(snap);
  out.Pod(static_cast<uint32_t>(snap->dense.size()));
  for (const ShardSnapshot::Dense& v : snap->dense) {
    out.Str(v.name);
    out.Pod(static_cast<uint32_t>(v.shape.size()));
    for (int64_t d : v.shape) out.Pod(d);
    out.Pod(v.offset);
    if (version >= 5) {
      out.Pod(static_cast<uint8_t>(v.update.moving_average));
      out.Pod(v.update.momentum);
    }
    out.Pod(static_cast<uint64_t>(v.values.size()));
    out.Put(v.values.data(), v.values.size() * sizeof(float));
    out.Pod(static_cast<uint64_t>(v.slots.size()));
    out.Put(v.slots.data(), v.slots.size() * sizeof(float));
    PutOptState(out, v.state);
  }
  s = out.Close();
  if (!s.ok()) return s;
  // The commit fsyncs the folder this rename lands in.
  s = env->RenameFile(tmp, (fs::path(dir) / name).string());
  if (!s.ok()) return s;
  result->file.name = name;
  result->file.bytes = out.bytes();
  result->file.crc32c = out.crc();
  result->positions = snap->positions;
  // The newest cut is this snapshot's: a newer one would have superseded it
  // and failed the copy above.
  result->cut_ms = shard.last_cut_hold_ms();
  result->write_ms = MillisSince(start);
  shard.SaveWritten(global_step, options.since_step);
  return Status::Ok();
}

Status SaveShard(Shard& shard, const std::string& dir, int64_t global_step, CheckpointFile* file,
                 uint64_t* rows) {
  SaveShardResult r;
  Status s = SaveShard(shard, dir, global_step, &r);
  *file = r.file;
  *rows = r.rows;
  return s;
}

namespace {

// Loads one shard file of the checkpoint into `shard` as it streams.
// Puts together the slice of each dense variable this shard holds under its
// own partition plan from the slices a checkpoint's files hold under the
// plan it was saved with (any shard count, any slice size; version 2 files
// hold whole variables). The optimizer's slots are planes of the variable's
// width (SlotFloats(w) = a*w + b) followed by b per-variable floats; the
// planes are cut like the values, and the b floats and the optimizer state
// come from the saved slice holding this slice's first element.
class DenseAssembly {
 public:
  explicit DenseAssembly(const Shard& shard) : shard_(shard) {}

  Status Add(const std::string& name, const std::vector<int64_t>& shape, int64_t offset,
             const std::vector<float>& values, const std::vector<float>& slots,
             const VariableOptState& state, const DenseUpdate& update) {
    int64_t whole = 0;
    Status s = DenseStore::CheckShape(name, shape, &whole);
    if (!s.ok()) return s;
    s = DenseStore::CheckUpdate(name, update);
    if (!s.ok()) return s;
    const int64_t n = static_cast<int64_t>(values.size());
    if (offset < 0 || n == 0 || offset > whole - n)
      return Corrupt(name, "its slice lies outside its shape");
    const Optimizer& opt = shard_.optimizer();
    const int64_t per = opt.SlotFloats(1) - opt.SlotFloats(0), extra = opt.SlotFloats(0);
    if (static_cast<int64_t>(slots.size()) != per * n + extra) {
      return Corrupt(name, "has " + std::to_string(slots.size()) +
                               " slot floats, this optimizer needs " +
                               std::to_string(per * n + extra));
    }
    const ShardOptions& so = shard_.options();
    const std::optional<DenseSlice> mine = SliceOnShard(
        PartitionDense(shard_.router(), name, shape, so.dense_slice_bytes), so.shard_index);
    if (!mine) return Status::Ok();
    auto [it, fresh] = parts_.try_emplace(name);
    Part& p = it->second;
    if (fresh) {
      p.shape = shape;
      p.update = update;
      p.slice = *mine;
      p.values.resize(mine->size);
      p.slots.resize(per * mine->size + extra);
    } else if (p.shape != shape) {
      return Corrupt(name, "has two shapes in one checkpoint");
    } else if (!(p.update == update)) {
      return Corrupt(name, "has two kinds of update in one checkpoint");
    }
    const int64_t lo = std::max(offset, mine->offset);
    const int64_t hi = std::min(offset + n, mine->offset + mine->size);
    if (lo >= hi) return Status::Ok();
    const int64_t len = hi - lo, from = lo - offset, to = lo - mine->offset;
    std::copy_n(values.begin() + from, len, p.values.begin() + to);
    for (int64_t plane = 0; plane < per; ++plane) {
      std::copy_n(slots.begin() + plane * n + from, len, p.slots.begin() + plane * mine->size + to);
    }
    if (lo == mine->offset) {
      std::copy_n(slots.begin() + per * n, extra, p.slots.begin() + per * mine->size);
      p.state = state;
    }
    p.covered += len;
    if (p.covered > mine->size) return Corrupt(name, "has overlapping slices");
    return Status::Ok();
  }

  // Registers and sets every assembled slice; each must be complete.
  Status Install(Shard* shard, const std::string& folder) {
    for (auto& [name, p] : parts_) {
      if (p.covered != p.slice.size) {
        return DataLoss("checkpoint " + folder + " holds " + std::to_string(p.covered) +
                        " of the " + std::to_string(p.slice.size) +
                        " elements of dense variable '" + name + "' that this shard needs");
      }
      uint32_t id;
      bool created;
      Status s = shard->dense().Register(name, p.shape, p.slice.offset, p.slice.size, p.values, &id,
                                         &created, p.update);
      if (s.ok()) s = shard->dense().Assign(id, p.values, p.slots, p.state);
      if (!s.ok()) return DataLoss(folder + ": " + s.message());
    }
    parts_.clear();
    return Status::Ok();
  }

 private:
  struct Part {
    std::vector<int64_t> shape;
    DenseSlice slice;
    std::vector<float> values, slots;
    VariableOptState state;
    DenseUpdate update;
    int64_t covered = 0;
  };
  static Status Corrupt(const std::string& name, const std::string& what) {
    return DataLoss("dense variable '" + name + "' " + what);
  }

  const Shard& shard_;
  std::map<std::string, Part> parts_;
};

// Admission state read from the newest checkpoint of a chain: counts are set
// once every row is in (a key with a row needs no count).
struct AdmissionRestore {
  bool newest = false;        // the file belongs to the chain's last checkpoint
  uint32_t saved_shards = 0;  // files of that checkpoint
  std::map<EmbeddingTable*, std::vector<std::pair<uint64_t, uint32_t>>> pending;
  void Install() {
    for (auto& [t, keys] : pending) {
      for (const auto& [key, count] : keys) t->SetPendingCount(key, count);
    }
    pending.clear();
  }
};

// A table's admission state and evicted keys (version 4). The state is
// taken only from the chain's newest checkpoint and only when this shard
// runs the same filter; Bloom counters of several saved shards are added up
// (a restore onto another shard count), which can only over-count.
Status LoadPolicyState(StreamSource& in, Shard* shard, EmbeddingTable* t, const std::string& name,
                       bool state_source, AdmissionRestore* admission) {
  const Router& router = shard->router();
  const uint32_t me = shard->options().shard_index;
  const EvPolicy& ev = t->options().ev;
  const FilterKind running = ev.admission() ? ev.filter : FilterKind::kNone;
  uint8_t kind;
  if (!in.Pod(&kind) || kind > static_cast<uint8_t>(FilterKind::kBloom)) {
    return in.Corrupt("bad admission state of table '" + name + "'");
  }
  const bool keep = admission->newest && static_cast<FilterKind>(kind) == running;
  if (admission->newest && static_cast<FilterKind>(kind) != running && running != FilterKind::kNone &&
      state_source) {
    fprintf(stderr,
            "shard %u: table '%s': the checkpoint's admission state is for the %s filter, this "
            "shard runs the %s filter (--ev_filter): starting it empty\n",
            me, name.c_str(), FilterKindName(static_cast<FilterKind>(kind)), FilterKindName(running));
  }
  if (static_cast<FilterKind>(kind) == FilterKind::kCounter) {
    uint64_t n;
    if (!in.Pod(&n)) return in.Corrupt("truncated admission counts of table '" + name + "'");
    auto& out = admission->pending[t];
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t key;
      uint32_t count;
      if (!in.Pod(&key) || !in.Pod(&count)) return in.Corrupt("truncated admission counts");
      if (keep && router.ShardOfKey(key) == me) out.emplace_back(key, count);
    }
  } else if (static_cast<FilterKind>(kind) == FilterKind::kBloom) {
    uint64_t n;
    // Bounded by the file before anything is allocated for it.
    if (!in.Pod(&n) || n > in.remaining() / sizeof(uint16_t))
      return in.Corrupt("bad Bloom filter of table '" + name + "'");
    std::vector<uint16_t> bloom(n);
    if (!in.Bytes(bloom.data(), n * sizeof(uint16_t))) return in.Corrupt("truncated Bloom filter");
    const bool same_count = shard->options().num_shards == admission->saved_shards;
    if (keep && (state_source || !same_count) && !t->AddBloomCounters(bloom)) {
      fprintf(stderr,
              "shard %u: table '%s': the checkpoint's Bloom filter has %llu counters, this one "
              "%zu (other --ev_bloom_max_elements or --ev_bloom_fp_rate): starting it empty\n",
              me, name.c_str(), static_cast<unsigned long long>(n), t->BloomCounters().size());
    }
  }
  uint64_t evicted;
  if (!in.Pod(&evicted)) return in.Corrupt("truncated evicted keys of table '" + name + "'");
  for (uint64_t i = 0; i < evicted; ++i) {
    uint64_t key;
    if (!in.Pod(&key)) return in.Corrupt("truncated evicted keys");
    if (router.ShardOfKey(key) == me) t->Erase(key);
  }
  return Status::Ok();
}

Status LoadShardFile(Shard* shard, const Manifest& m, const std::string& path,
                     const CheckpointFile& f, bool first_file, DenseAssembly* dense,
                     AdmissionRestore* admission, uint64_t* rows) {
  std::error_code ec;
  const uint64_t on_disk = fs::file_size(path, ec);
  if (ec) return DataLoss("checkpoint file missing: " + path);
  if (on_disk != f.bytes) {
    return DataLoss("checkpoint file " + path + " is " + std::to_string(on_disk) +
                    " bytes, manifest says " + std::to_string(f.bytes) + " (truncated?)");
  }
  StreamSource in(path, f.bytes);
  if (!in.open()) return DataLoss("cannot open " + path + ": " + std::strerror(errno));
  const ShardOptions& so = shard->options();
  const Router& router = shard->router();
  char magic[8];
  uint32_t file_shard, file_shards, num_slots, num_tables;
  int64_t step;
  if (!in.Bytes(magic, 8) || std::memcmp(magic, kMagic, 7) != 0) return in.Corrupt("bad magic");
  const int version = magic[7] - '0';
  if (version < kOldestReadableVersion || version > kShardFileVersion) {
    return FailedPrecondition(path + " is shard file format version " + std::string(1, magic[7]) +
                              "; this build reads version " + std::to_string(kShardFileVersion) +
                              (kOldestReadableVersion < kShardFileVersion
                                   ? " (and " + std::to_string(kOldestReadableVersion) + ")"
                                   : std::string()));
  }
  if (!in.Pod(&file_shard) || !in.Pod(&file_shards) || !in.Pod(&num_slots) || !in.Pod(&step) ||
      !in.Pod(&num_tables)) {
    return in.Corrupt("truncated header");
  }
  if (num_slots != m.num_slots) return in.Corrupt("slot count differs from the manifest");
  if (step != m.global_step) return in.Corrupt("step differs from the manifest's");
  // Per-variable optimizer state comes from the file of the same shard when
  // the shard count is unchanged, else from the first file.
  const bool state_source =
      (file_shards == so.num_shards) ? (file_shard == so.shard_index) : first_file;
  std::vector<float> v;
  for (uint32_t ti = 0; ti < num_tables; ++ti) {
    std::string name;
    uint32_t dim, sf;
    uint64_t seed;
    float stddev;
    VariableOptState st;
    if (!in.Str(&name) || !in.Pod(&dim) || !in.Pod(&sf) || !in.Pod(&seed) || !in.Pod(&stddev) ||
        !GetOptState(in, &st)) {
      return in.Corrupt("truncated table header");
    }
    RegisterTableRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_dim(dim);
    req.mutable_spec()->set_seed(seed);
    req.mutable_spec()->set_init_stddev(stddev);
    RegisterTableResponse resp;
    Status s = shard->RegisterTable(req, &resp);
    if (!s.ok()) return s;
    EmbeddingTable* t = shard->table(resp.table_id());
    if (static_cast<uint32_t>(t->slot_floats()) != sf) {
      return in.Corrupt("table '" + name + "' has " + std::to_string(sf) +
                        " optimizer slot floats per row, this optimizer needs " +
                        std::to_string(t->slot_floats()));
    }
    if (state_source) t->set_opt_state(st);
    if (version >= 4) {
      Status a = LoadPolicyState(in, shard, t, name, state_source, admission);
      if (!a.ok()) return a;
    }
    const size_t record = t->record_bytes();
    v.resize(dim + sf);
    uint64_t seen = 0;
    while (true) {
      uint32_t slot, count;
      if (!in.Pod(&slot)) return in.Corrupt("truncated rows of table '" + name + "'");
      if (slot == kEndOfRows) break;
      if (!in.Pod(&count) || slot >= num_slots || count == 0) {
        return in.Corrupt("bad slot group in table '" + name + "'");
      }
      seen += count;
      if (router.ShardOfSlot(slot) != so.shard_index) {
        if (!in.Skip(record * count)) return in.Corrupt("truncated rows");
        continue;
      }
      for (uint32_t r = 0; r < count; ++r) {
        uint64_t key;
        RowMeta meta;
        if (!in.Pod(&key) || !in.Pod(&meta) || !in.Bytes(v.data(), sizeof(float) * (dim + sf))) {
          return in.Corrupt("truncated rows");
        }
        t->Upsert(key, v.data(), v.data() + dim, meta);
        ++*rows;
      }
    }
    uint64_t total;
    if (!in.Pod(&total) || total != seen)
      return in.Corrupt("row count of table '" + name + "' does not match its rows");
  }
  uint32_t num_dense;
  if (!in.Pod(&num_dense)) return in.Corrupt("truncated dense count");
  for (uint32_t di = 0; di < num_dense; ++di) {
    std::string name;
    uint32_t rank;
    if (!in.Str(&name) || !in.Pod(&rank) || rank > DenseStore::kMaxRank)
      return in.Corrupt("bad dense header");
    std::vector<int64_t> shape(rank);
    for (auto& d : shape) {
      if (!in.Pod(&d)) return in.Corrupt("truncated dense shape");
    }
    int64_t offset = 0;
    if (version >= 3 && !in.Pod(&offset)) return in.Corrupt("truncated dense offset");
    DenseUpdate update;
    if (version >= 5) {
      uint8_t moving;
      if (!in.Pod(&moving) || moving > 1 || !in.Pod(&update.momentum)) {
        return in.Corrupt("bad dense update of '" + name + "'");
      }
      update.moving_average = moving == 1;
    }
    uint64_t nv, ns;
    if (!in.Pod(&nv) || nv > DenseStore::kMaxElements) return in.Corrupt("bad dense size");
    std::vector<float> values(nv);
    if (!in.Bytes(values.data(), nv * sizeof(float)) || !in.Pod(&ns) ||
        ns > 4 * DenseStore::kMaxElements) {
      return in.Corrupt("truncated dense values");
    }
    std::vector<float> slots(ns);
    VariableOptState st;
    if (!in.Bytes(slots.data(), ns * sizeof(float)) || !GetOptState(in, &st)) {
      return in.Corrupt("truncated dense slots");
    }
    Status s = dense->Add(name, shape, offset, values, slots, st, update);
    if (!s.ok()) return in.Corrupt(s.message());
  }
  return in.Finish(f.crc32c);
}

}  // namespace

Status RestoreShard(std::unique_ptr<Shard>* target, const std::string& folder, uint64_t* rows) {
  Status s;
  std::unique_ptr<Shard> staging = Shard::Create((*target)->options(), &s);
  if (!staging) return s;
  Shard* shard = staging.get();
  // A delta applies on the saves before it: load the full one, then each
  // delta in order. Files are verified as they stream, not read twice.
  std::vector<ChainLink> chain;
  s = ReadCheckpointChain(folder, /*verify=*/false, &chain);
  if (!s.ok()) return s;
  const ShardOptions& so = shard->options();
  const std::string opt_name = OptimizerName(shard->optimizer().type());
  *rows = 0;
  AdmissionRestore admission;
  for (size_t c = 0; c < chain.size(); ++c) {
    const std::string& at = chain[c].folder;
    const Manifest& m = chain[c].manifest;
    if (m.optimizer != opt_name) {
      return FailedPrecondition("checkpoint " + at + " was saved with optimizer " + m.optimizer +
                                ", this shard runs " + opt_name +
                                "; restart with --optimizer=" + m.optimizer);
    }
    if (m.num_slots != so.num_slots) {
      return FailedPrecondition("checkpoint " + at + " routes keys over " +
                                std::to_string(m.num_slots) + " slots, this shard over " +
                                std::to_string(so.num_slots) +
                                "; the slot count is fixed for the life of a model");
    }
    if (c > 0 && m.base_step != chain[c - 1].manifest.global_step) {
      return DataLoss("checkpoint " + at + " applies on step " + std::to_string(m.base_step) +
                      ", but its base " + chain[c - 1].folder + " is step " +
                      std::to_string(chain[c - 1].manifest.global_step));
    }
    uint64_t loaded = 0;  // counts a row once per file it is in; the table counts it once
    DenseAssembly dense(*shard);
    admission.newest = c + 1 == chain.size();
    admission.saved_shards = static_cast<uint32_t>(m.files.size());
    for (uint32_t fi = 0; fi < m.files.size(); ++fi) {
      const std::string path = (fs::path(at) / m.files[fi].name).string();
      s = LoadShardFile(shard, m, path, m.files[fi], fi == 0, &dense, &admission, &loaded);
      if (!s.ok()) return s;
    }
    s = dense.Install(shard, at);
    if (!s.ok()) return s;
  }
  admission.Install();
  *rows = 0;
  for (EmbeddingTable* t : shard->tables()) *rows += t->size();
  const Manifest& m = chain.back().manifest;
  StatsResponse data;
  data.set_restored_batch_size(m.batch_size);
  data.set_restored_num_workers(m.num_workers);
  data.set_restored_data_files(m.data_files);
  data.set_restored_feature_spec(m.feature_spec);
  for (const TrainerDataPosition& p : m.positions) {
    TrainerPosition* tp = data.add_restored_positions();
    tp->set_task_index(p.task_index);
    ToProto(p.position, tp->mutable_position());
  }
  shard->SetRestored(m.global_step, data);
  *target = std::move(staging);
  return Status::Ok();
}

}  // namespace deepfm::ps

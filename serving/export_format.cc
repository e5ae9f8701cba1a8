#include "serving/export_format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/bf16.h"
#include "common/crc32c.h"
#include "common/env.h"
#include "common/hash.h"
#include "common/random.h"

namespace deepfm::serving {

namespace {

constexpr char kMagicPrefix[7] = {'D', 'F', 'M', 'M', 'O', 'D', 'L'};
constexpr uint32_t kEmptySlot = 0xFFFFFFFFu;
constexpr size_t kAlign = 64;
constexpr size_t kFixedHeader = 16;
constexpr size_t kEntryBytes = 32;

enum SectionKind : uint32_t { kMeta = 1, kDense = 2, kKeys = 3, kIndex = 4, kValues = 5 };

const char* KindName(uint32_t kind) {
  switch (kind) {
    case kMeta:
      return "meta";
    case kDense:
      return "dense";
    case kKeys:
      return "keys";
    case kIndex:
      return "index";
    case kValues:
      return "values";
  }
  return "unknown";
}

struct Entry {
  uint32_t kind = 0, index = 0;
  uint64_t offset = 0, bytes = 0;
  uint32_t crc = 0, zero = 0;
};
static_assert(sizeof(Entry) == kEntryBytes, "the section table's entry is 32 bytes");

// Enough slots that linear probing stays short: at most 3/4 full.
uint64_t SlotsFor(uint64_t rows) {
  uint64_t slots = 16;
  while (slots * 3 < rows * 4) slots *= 2;
  return slots;
}

size_t ElementBytes(ExportMeta::ValueType t) { return t == ExportMeta::BF16 ? 2 : 4; }

uint64_t DenseElements(const ExportDense& d) {
  uint64_t n = 1;
  for (int64_t s : d.shape()) n *= static_cast<uint64_t>(s);
  return n;
}

Status Bad(const std::string& what) { return InvalidArgument("export contents: " + what); }

}  // namespace

uint64_t ExportSlotOf(uint64_t key, uint64_t slot_mask) { return Mix64(key) & slot_mask; }

Status WriteExportFile(const std::string& path, const ExportContents& c, ExportFileStats* stats) {
  const ExportMeta& meta = c.meta;
  if (c.tables.size() != static_cast<size_t>(meta.tables_size()))
    return Bad("table count differs from the meta's");
  if (c.dense.size() != static_cast<size_t>(meta.dense_size()))
    return Bad("dense count differs from the meta's");
  const size_t elem = ElementBytes(meta.value_type());
  // Every section's bytes, in file order.
  std::vector<Entry> entries;
  std::vector<std::string> blobs;
  auto add = [&](uint32_t kind, uint32_t index, std::string bytes) {
    Entry e;
    e.kind = kind;
    e.index = index;
    e.bytes = bytes.size();
    e.crc = Crc32c(bytes.data(), bytes.size());
    entries.push_back(e);
    blobs.push_back(std::move(bytes));
  };
  std::string meta_bytes;
  meta.SerializeToString(&meta_bytes);
  add(kMeta, 0, std::move(meta_bytes));
  std::string dense;
  for (size_t i = 0; i < c.dense.size(); ++i) {
    if (c.dense[i].size() != DenseElements(meta.dense(i))) {
      return Bad("dense variable '" + meta.dense(i).name() + "' has " +
                 std::to_string(c.dense[i].size()) + " values, its shape " +
                 std::to_string(DenseElements(meta.dense(i))));
    }
    dense.append(reinterpret_cast<const char*>(c.dense[i].data()),
                 c.dense[i].size() * sizeof(float));
  }
  const uint64_t dense_bytes = dense.size();
  add(kDense, 0, std::move(dense));
  std::vector<uint64_t> table_bytes;
  for (size_t t = 0; t < c.tables.size(); ++t) {
    const ExportTableData& d = c.tables[t];
    const ExportTable& tm = meta.tables(t);
    const uint64_t n = d.keys.size();
    if (n != tm.rows() || d.values.size() != n * tm.width() || n >= kEmptySlot) {
      return Bad("table '" + tm.name() + "' rows or values do not match its meta");
    }
    for (uint64_t i = 1; i < n; ++i) {
      if (d.keys[i] <= d.keys[i - 1])
        return Bad("table '" + tm.name() + "' keys are not strictly ascending");
    }
    std::string keys(reinterpret_cast<const char*>(d.keys.data()), n * sizeof(uint64_t));
    const uint64_t slots = SlotsFor(n);
    std::vector<uint32_t> index(slots, kEmptySlot);
    for (uint64_t r = 0; r < n; ++r) {
      uint64_t s = ExportSlotOf(d.keys[r], slots - 1);
      while (index[s] != kEmptySlot) s = (s + 1) & (slots - 1);
      index[s] = static_cast<uint32_t>(r);
    }
    std::string values;
    if (elem == 2) {
      std::vector<uint16_t> h(d.values.size());
      FloatToBf16(d.values.data(), h.data(), h.size());
      values.assign(reinterpret_cast<const char*>(h.data()), h.size() * 2);
    } else {
      values.assign(reinterpret_cast<const char*>(d.values.data()), d.values.size() * 4);
    }
    table_bytes.push_back(keys.size() + slots * 4 + values.size());
    add(kKeys, static_cast<uint32_t>(t), std::move(keys));
    add(kIndex, static_cast<uint32_t>(t),
        std::string(reinterpret_cast<const char*>(index.data()), slots * sizeof(uint32_t)));
    add(kValues, static_cast<uint32_t>(t), std::move(values));
  }
  uint64_t at = kFixedHeader + entries.size() * kEntryBytes;
  for (Entry& e : entries) {
    at = (at + kAlign - 1) / kAlign * kAlign;
    e.offset = at;
    at += e.bytes;
  }
  std::string header(kFixedHeader, '\0');
  std::memcpy(header.data(), kMagicPrefix, 7);
  header[7] = static_cast<char>('0' + kExportFormatVersion);
  const uint32_t count = static_cast<uint32_t>(entries.size());
  std::memcpy(header.data() + 8, &count, 4);
  const std::string table(reinterpret_cast<const char*>(entries.data()),
                          entries.size() * kEntryBytes);
  const uint32_t table_crc = Crc32c(table.data(), table.size());
  std::memcpy(header.data() + 12, &table_crc, 4);

  Env* env = Env::Default();
  const std::string tmp = path + ".tmp";
  std::unique_ptr<WritableFile> f;
  Status s = env->NewWritableFile(tmp, &f);
  if (!s.ok()) return s;
  uint64_t written = 0;
  auto put = [&](std::string_view bytes) {
    if (s.ok()) s = f->Append(bytes);
    written += bytes.size();
  };
  put(header);
  put(table);
  for (size_t i = 0; i < entries.size(); ++i) {
    put(std::string(entries[i].offset - written, '\0'));
    put(blobs[i]);
  }
  if (s.ok()) s = f->Sync();
  Status closed = f->Close();
  if (s.ok()) s = closed;
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) {
    env->RemoveFile(tmp);
    return Status(s.code(), "writing " + path + ": " + s.message());
  }
  if (stats) {
    stats->bytes = written;
    stats->table_bytes = table_bytes;
    stats->dense_bytes = dense_bytes;
  }
  return Status::Ok();
}

int64_t ExportFile::Table::Find(uint64_t key) const {
  uint64_t s = ExportSlotOf(key, slot_mask);
  while (true) {
    const uint32_t r = index[s];
    if (r == kEmptySlot) return -1;
    if (keys[r] == key) return r;
    s = (s + 1) & slot_mask;
  }
}

void ExportFile::Table::CopyRow(int64_t r, float* out) const {
  const size_t at = static_cast<size_t>(r) * width;
  if (bf16) {
    Bf16ToFloat(static_cast<const uint16_t*>(values) + at, out, width);
  } else {
    std::memcpy(out, static_cast<const float*>(values) + at, width * sizeof(float));
  }
}

void ExportFile::Table::Lookup(uint64_t key, float* out) const {
  const int64_t r = Find(key);
  if (r >= 0) {
    CopyRow(r, out);
  } else {
    // What a read-only pull of a key the shards never stored returns.
    InitRowNormal(key, seed, init_stddev, out, width);
  }
}

ExportFile::~ExportFile() {
  if (map_ != nullptr) munmap(map_, size_);
}

Status ExportFile::Open(const std::string& path, std::unique_ptr<const ExportFile>* out) {
  auto bad = [&](const std::string& what) {
    return DataLoss("export " + path + " is damaged: " + what + "; refusing to load it");
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return bad(std::strerror(errno));
  }
  std::unique_ptr<ExportFile> f(new ExportFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ < kFixedHeader) {
    ::close(fd);
    return bad("only " + std::to_string(f->size_) + " bytes");
  }
  f->map_ = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    return bad(std::string("mmap: ") + std::strerror(errno));
  }
  const char* base = static_cast<const char*>(f->map_);
  if (std::memcmp(base, kMagicPrefix, 7) != 0) return bad("not an export (bad magic)");
  const int version = base[7] - '0';
  if (version != kExportFormatVersion) {
    return FailedPrecondition(path + " is export format version " + std::string(1, base[7]) +
                              "; this build reads version " + std::to_string(kExportFormatVersion) +
                              ": export the checkpoint again with this build");
  }
  uint32_t count, table_crc;
  std::memcpy(&count, base + 8, 4);
  std::memcpy(&table_crc, base + 12, 4);
  if (count > (f->size_ - kFixedHeader) / kEntryBytes) return bad("section count beyond the file");
  std::vector<Entry> entries(count);
  std::memcpy(entries.data(), base + kFixedHeader, count * kEntryBytes);
  if (Crc32c(entries.data(), count * kEntryBytes) != table_crc)
    return bad("section table fails its checksum");
  for (const Entry& e : entries) {
    const std::string name = std::string(KindName(e.kind)) + " section " + std::to_string(e.index);
    if (e.offset > f->size_ || e.bytes > f->size_ - e.offset)
      return bad(name + " runs past the end (truncated?)");
    if (e.offset % kAlign != 0) return bad(name + " is not aligned");
    if (Crc32c(base + e.offset, e.bytes) != e.crc) return bad(name + " fails its checksum");
  }
  auto find = [&](uint32_t kind, uint32_t index) -> const Entry* {
    for (const Entry& e : entries) {
      if (e.kind == kind && e.index == index) return &e;
    }
    return nullptr;
  };
  const Entry* meta = find(kMeta, 0);
  if (meta == nullptr ||
      !f->meta_.ParseFromArray(base + meta->offset, static_cast<int>(meta->bytes))) {
    return bad("no readable meta section");
  }
  const Entry* dense = find(kDense, 0);
  if (dense == nullptr) return bad("no dense section");
  uint64_t at = 0;
  for (const ExportDense& d : f->meta_.dense()) {
    const uint64_t n = DenseElements(d);
    if (n > (dense->bytes - at) / sizeof(float))
      return bad("dense section shorter than its variables");
    f->dense_.push_back(reinterpret_cast<const float*>(base + dense->offset + at));
    at += n * sizeof(float);
  }
  if (at != dense->bytes) return bad("dense section longer than its variables");
  const bool bf16 = f->meta_.value_type() == ExportMeta::BF16;
  for (int t = 0; t < f->meta_.tables_size(); ++t) {
    const ExportTable& tm = f->meta_.tables(t);
    const std::string name = "table '" + tm.name() + "'";
    const Entry* keys = find(kKeys, t);
    const Entry* index = find(kIndex, t);
    const Entry* values = find(kValues, t);
    if (!keys || !index || !values) return bad(name + " lacks a section");
    Table tab;
    tab.name = tm.name();
    tab.width = static_cast<int>(tm.width());
    tab.rows = tm.rows();
    tab.seed = tm.seed();
    tab.init_stddev = tm.init_stddev();
    tab.bf16 = bf16;
    const uint64_t slots = index->bytes / sizeof(uint32_t);
    if (tab.width <= 0 || keys->bytes != tab.rows * sizeof(uint64_t) ||
        values->bytes != tab.rows * tab.width * ElementBytes(f->meta_.value_type()) || slots < 16 ||
        (slots & (slots - 1)) != 0 || slots <= tab.rows || index->bytes % 4 != 0) {
      return bad(name + " sections do not match its rows and width");
    }
    tab.keys = reinterpret_cast<const uint64_t*>(base + keys->offset);
    tab.index = reinterpret_cast<const uint32_t*>(base + index->offset);
    tab.slot_mask = slots - 1;
    tab.values = base + values->offset;
    for (uint64_t i = 1; i < tab.rows; ++i) {
      if (tab.keys[i] <= tab.keys[i - 1]) return bad(name + " keys are out of order");
    }
    uint64_t used = 0;
    for (uint64_t s = 0; s < slots; ++s) {
      const uint32_t r = tab.index[s];
      if (r == kEmptySlot) continue;
      if (r >= tab.rows) return bad(name + " index names a row beyond its rows");
      ++used;
    }
    if (used != tab.rows) return bad(name + " index does not hold every row once");
    f->tables_.push_back(tab);
  }
  *out = std::move(f);
  return Status::Ok();
}

}  // namespace deepfm::serving

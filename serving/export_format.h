// The serving model's file, model.dfm (DESIGN.md §11): everything a forward
// pass needs and nothing training keeps (no optimizer slots, no row
// metadata, no admission state).
//
// Layout, little-endian, format version kExportFormatVersion:
//   [0, 8)    magic "DFMMODL" + the version as one digit
//   [8, 12)   u32 number of sections S
//   [12, 16)  u32 CRC-32C of the section table
//   [16, 16 + 32 S)  the section table: per section u32 kind, u32 index
//             (the table's number for table sections), u64 offset, u64 bytes,
//             u32 CRC-32C of its bytes, u32 zero
//   sections, each at a 64-byte aligned offset, zero padding between:
//     kMeta      the ExportMeta proto (proto/serving.proto), serialized
//     kDense     every dense variable's fp32 values, in the meta's order
//     kKeys      table i's keys, u64, strictly ascending
//     kIndex     table i's open-addressing index: u32 row numbers, a power of
//                two of them, 0xFFFFFFFF empty; key k probes from
//                Mix64(k) & (slots - 1) upwards (wrapping) until its row or
//                an empty slot
//     kValues    table i's rows, [rows x width], fp32 or bf16 (the meta's
//                value_type), in key order
// The index makes a lookup two or three cache lines and nothing to build on
// load: ExportFile maps the file and uses it in place. Open verifies every
// checksum and every size before anything is used, so a damaged or
// truncated file is refused, naming the section.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/serving.pb.h"

namespace deepfm::serving {

// Any change to the bytes WriteExportFile writes bumps it; the golden file
// tests/serving/testdata/export-v<N>/model.dfm pins each version.
inline constexpr int kExportFormatVersion = 1;
// The file's name inside an export folder.
inline constexpr char kExportFileName[] = "model.dfm";

// What to write. Each table's keys strictly ascending, values [rows x
// width] fp32 (rounded to bf16 by the writer when meta.value_type is BF16);
// dense values in meta.dense's order and sizes.
struct ExportTableData {
  std::vector<uint64_t> keys;
  std::vector<float> values;
};
struct ExportContents {
  ExportMeta meta;  // meta.tables[i] describes tables[i]
  std::vector<ExportTableData> tables;
  std::vector<std::vector<float>> dense;
};

struct ExportFileStats {
  uint64_t bytes = 0;
  std::vector<uint64_t> table_bytes;  // keys + index + values, per table
  uint64_t dense_bytes = 0;
};

// Writes `contents` to `path` (through path + ".tmp", fsynced, renamed).
// Refuses contents that do not agree with their meta.
Status WriteExportFile(const std::string& path, const ExportContents& contents,
                       ExportFileStats* stats = nullptr);

// A verified export, mapped read-only. Immutable and safe to share between
// threads.
class ExportFile {
 public:
  struct Table {
    std::string name;
    int width = 0;
    uint64_t rows = 0;
    uint64_t seed = 0;
    float init_stddev = 0;
    bool bf16 = false;
    const uint64_t* keys = nullptr;
    const uint32_t* index = nullptr;
    uint64_t slot_mask = 0;
    const void* values = nullptr;

    // The row number of `key`, or -1 when the export lacks it.
    int64_t Find(uint64_t key) const;
    // Row r's values as fp32 into out[width].
    void CopyRow(int64_t r, float* out) const;
    // key's row, or the initial row training would have created for it.
    void Lookup(uint64_t key, float* out) const;
  };

  // Maps and verifies `path`. DataLoss names the file and what is wrong.
  static Status Open(const std::string& path, std::unique_ptr<const ExportFile>* out);
  ~ExportFile();
  ExportFile(const ExportFile&) = delete;
  ExportFile& operator=(const ExportFile&) = delete;

  const std::string& path() const { return path_; }
  const ExportMeta& meta() const { return meta_; }
  const std::vector<Table>& tables() const { return tables_; }
  // Dense variable i's values (meta().dense(i)'s shape).
  const float* dense(size_t i) const { return dense_[i]; }
  uint64_t bytes() const { return size_; }

 private:
  ExportFile() = default;
  std::string path_;
  void* map_ = nullptr;
  uint64_t size_ = 0;
  ExportMeta meta_;
  std::vector<Table> tables_;
  std::vector<const float*> dense_;
};

// The probe start of a key: fixed by the format.
uint64_t ExportSlotOf(uint64_t key, uint64_t slot_mask);

}  // namespace deepfm::serving

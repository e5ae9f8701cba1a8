#include "tools/datagen.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <system_error>
#include <utility>

#include "common/hash.h"
#include "common/random.h"
#include "common/timing.h"
#include "glog/logging.h"
#include "tools/planted.h"

namespace deepfm {
namespace {

using planted::AliasTable;
using planted::Auc;
using planted::LogLoss;
using planted::Sigmoid;

constexpr int kDense = 13;
constexpr int kFields = 26;
constexpr int kLatentDim = 4;
constexpr int64_t kCalibrationRows = 50000;
// Multiplies the whole hidden logit; sets how learnable the data is (the
// oracle AUC lands near 0.79, a little above what DeepFM reaches on Criteo).
constexpr double kSignalScale = 1.3;

// Criteo-like shape of the planted world. Missing rates follow the real
// Criteo 1TB/Kaggle columns roughly; effect scales make some fields matter a
// lot, many a little, and a few not at all.
constexpr double kCatMissing[kFields] = {0,    0,    0.03, 0.03, 0, 0.12, 0,    0,   0,
                                         0,    0,    0.03, 0,    0, 0,    0.03, 0,   0,
                                         0.44, 0.44, 0.03, 0.76, 0, 0.03, 0.44, 0.44};
constexpr double kCatEffect[kFields] = {0.30, 0.25, 0.20, 0.15, 0.10, 0.35, 0.20, 0.10, 0.30,
                                        0.15, 0.20, 0.10, 0.15, 0.30, 0.10, 0.20, 0.25, 0.05,
                                        0.10, 0.20, 0.10, 0.15, 0.25, 0.00, 0.20, 0.00};
constexpr double kDenseMissing[kDense] = {0.45,   0,    0.21, 0.22, 0.03, 0.22, 0.04,
                                          0.0005, 0.04, 0.45, 0.04, 0.77, 0.22};
// log(1 + v) ~ N(mu, sigma) before flooring to an integer.
constexpr double kDenseMu[kDense] = {0.7, 1.4, 2.0, 1.6, 7.5, 3.4, 1.4,
                                     2.2, 3.7, 0.6, 0.8, 0.2, 1.6};
constexpr double kDenseSigma[kDense] = {0.9, 1.3, 1.2, 0.8, 1.8, 1.5, 1.2,
                                        0.9, 1.2, 0.6, 0.7, 0.5, 0.9};
constexpr double kDenseSlope[kDense] = {0.15, 0.05, -0.05, 0.0,  -0.08, -0.04, 0.12,
                                        0.0,  0.04, 0.25,  0.20, 0.05,  -0.05};
// Low-rank (FM-like) interactions between field pairs, and one arbitrary
// table interaction between two small fields that only a DNN can express.
struct Pair {
  int a, b;
  double scale;
};
constexpr Pair kLatentPairs[] = {
    {0, 5, 0.35}, {5, 13, 0.30}, {1, 16, 0.25}, {8, 22, 0.30}, {4, 24, 0.20}};
constexpr Pair kTablePair = {19, 21, 0.40};

std::vector<int64_t> ResolveCardinalities(const DataGenOptions& o, Status* status) {
  if (o.cardinalities.empty()) return DefaultCardinalities();
  std::vector<int64_t> c = o.cardinalities;
  if (c.size() == 1) c.assign(kFields, c[0]);
  if (c.size() != static_cast<size_t>(kFields)) {
    *status = InvalidArgument("datagen: cardinalities needs 1 or 26 entries, got " +
                              std::to_string(o.cardinalities.size()));
    return {};
  }
  for (int64_t v : c) {
    if (v < 1 || v > (int64_t{1} << 31)) {
      *status = InvalidArgument("datagen: every cardinality must be in [1, 2^31], got " +
                                std::to_string(v));
      return {};
    }
  }
  return c;
}

// A bijection on 32 bits, so distinct values of a field get distinct tokens
// (a hash could collide and silently merge two planted values).
inline uint32_t Scramble32(uint32_t x, uint32_t salt) {
  x ^= salt;
  x *= 0x9e3779b1u;
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

struct Row {
  int32_t cat[kFields];  // value index, -1 = empty
  int64_t dense[kDense];
  bool dense_missing[kDense];
};

// The planted world: value distributions and the hidden logit.
class World {
 public:
  World(const DataGenOptions& o, std::vector<int64_t> card) : card_(std::move(card)) {
    for (int f = 0; f < kFields; ++f) {
      std::vector<double> w(card_[f]);
      for (int64_t r = 0; r < card_[f]; ++r) w[r] = std::pow(double(r + 1), -o.zipf_s);
      zipf_.emplace_back(w);
      salt_[f] = static_cast<uint32_t>(Mix64(o.seed ^ (0x51ed2701ull * (f + 1))));
      // Effect of each value; index card is the empty token.
      SplitMix64 rng(Mix64(o.seed + 0x1000 + f));
      effect_[f].resize(card_[f] + 1);
      for (float& e : effect_[f]) e = static_cast<float>(rng.Normal() * kCatEffect[f]);
    }
    for (const Pair& p : kLatentPairs) {
      for (int f : {p.a, p.b}) {
        if (!latent_[f].empty()) continue;
        SplitMix64 rng(Mix64(o.seed + 0x2000 + f));
        latent_[f].resize((card_[f] + 1) * kLatentDim);
        for (float& v : latent_[f]) v = static_cast<float>(rng.Normal() / std::sqrt(kLatentDim));
      }
    }
    table_seed_ = Mix64(o.seed + 0x3000);
  }

  int64_t cardinality(int f) const { return card_[f]; }
  uint32_t token(int f, int32_t v) const { return Scramble32(static_cast<uint32_t>(v), salt_[f]); }

  void Draw(SplitMix64* rng, Row* row) const {
    for (int f = 0; f < kFields; ++f) {
      const bool missing = kCatMissing[f] > 0 && rng->Uniform() < kCatMissing[f];
      row->cat[f] = missing ? -1 : static_cast<int32_t>(zipf_[f].Sample(rng->Next()));
    }
    for (int d = 0; d < kDense; ++d) {
      row->dense_missing[d] = kDenseMissing[d] > 0 && rng->Uniform() < kDenseMissing[d];
      if (row->dense_missing[d]) {
        row->dense[d] = 0;
        continue;
      }
      const double z = kDenseMu[d] + kDenseSigma[d] * rng->Normal();
      int64_t v = static_cast<int64_t>(std::floor(std::expm1(std::max(0.0, z))));
      // Criteo's I2 has a few negative values.
      if (d == 1 && rng->Uniform() < 0.02) v = -1 - static_cast<int64_t>(rng->Uniform() * 3);
      row->dense[d] = v;
    }
  }

  double Logit(const Row& row) const {
    double z = 0;
    for (int f = 0; f < kFields; ++f) z += effect_[f][Index(row, f)];
    for (const Pair& p : kLatentPairs) {
      const float* u = &latent_[p.a][size_t(Index(row, p.a)) * kLatentDim];
      const float* v = &latent_[p.b][size_t(Index(row, p.b)) * kLatentDim];
      double dot = 0;
      for (int k = 0; k < kLatentDim; ++k) dot += double(u[k]) * v[k];
      z += p.scale * dot;
    }
    {
      const uint64_t h = Mix64(table_seed_ ^ (uint64_t(Index(row, kTablePair.a)) << 32) ^
                               uint64_t(Index(row, kTablePair.b)));
      z += kTablePair.scale * ((h >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    }
    for (int d = 0; d < kDense; ++d) {
      // The model sees x = log(1 + max(v, 0)), 0 when missing.
      const double x =
          row.dense_missing[d] ? 0.0 : std::log1p(double(std::max<int64_t>(row.dense[d], 0)));
      z += kDenseSlope[d] * x;
    }
    // A non-linear dense effect: a sweet spot in I5.
    if (!row.dense_missing[4]) {
      const double x = std::log1p(double(std::max<int64_t>(row.dense[4], 0)));
      z -= 0.06 * (x - 7.0) * (x - 7.0);
    }
    return kSignalScale * z;
  }

 private:
  int64_t Index(const Row& row, int f) const { return row.cat[f] < 0 ? card_[f] : row.cat[f]; }

  std::vector<int64_t> card_;
  std::vector<AliasTable> zipf_;
  uint32_t salt_[kFields];
  std::vector<float> effect_[kFields];
  std::vector<float> latent_[kFields];
  uint64_t table_seed_;
};

class LineWriter {
 public:
  LineWriter(std::FILE* file, char sep) : file_(file), sep_(sep) {
    buf_.reserve(kFlushBytes + 4096);
  }

  bool WriteRow(const World& world, const Row& row, int label) {
    buf_.push_back(static_cast<char>('0' + label));
    for (int d = 0; d < kDense; ++d) {
      buf_.push_back(sep_);
      if (row.dense_missing[d]) continue;
      char tmp[24];
      const auto r = std::to_chars(tmp, tmp + sizeof(tmp), row.dense[d]);
      buf_.append(tmp, r.ptr);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    for (int f = 0; f < kFields; ++f) {
      buf_.push_back(sep_);
      if (row.cat[f] < 0) continue;
      const uint32_t t = world.token(f, row.cat[f]);
      char tmp[8];
      for (int i = 0; i < 8; ++i) tmp[i] = kHex[(t >> (28 - 4 * i)) & 0xf];
      buf_.append(tmp, 8);
    }
    buf_.push_back('\n');
    return buf_.size() < kFlushBytes || Flush();
  }

  bool Flush() {
    const bool ok = std::fwrite(buf_.data(), 1, buf_.size(), file_) == buf_.size();
    buf_.clear();
    return ok;
  }

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  std::FILE* file_;
  char sep_;
  std::string buf_;
};

struct SplitResult {
  int64_t positives = 0;
  std::vector<double> probs;
  std::vector<uint8_t> labels;
};

Status WriteSplit(const World& world, double bias, uint64_t stream_seed, int64_t rows,
                  const std::string& path, char sep, bool keep_probs, SplitResult* result) {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!file) return Internal(tmp + ": cannot create: " + std::strerror(errno));
  LineWriter writer(file.get(), sep);
  SplitMix64 rng(stream_seed);
  Row row;
  bool ok = true;
  if (keep_probs) {
    result->probs.resize(rows);
    result->labels.resize(rows);
  }
  for (int64_t i = 0; i < rows && ok; ++i) {
    world.Draw(&rng, &row);
    const double p = Sigmoid(world.Logit(row) + bias);
    const int label = rng.Uniform() < p ? 1 : 0;
    result->positives += label;
    if (keep_probs) {
      result->probs[i] = p;
      result->labels[i] = static_cast<uint8_t>(label);
    }
    ok = writer.WriteRow(world, row, label);
  }
  ok = ok && writer.Flush();
  ok = (std::fclose(file.release()) == 0) && ok;
  if (!ok) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return Internal(tmp + ": write failed: " + err + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return Internal("cannot rename " + tmp + " to " + path + ": " + err);
  }
  return Status::Ok();
}

}  // namespace

std::vector<int64_t> DefaultCardinalities() {
  return {1460, 583,   200000, 120000, 305,  24,   12517, 633,    3,  93145, 5683,   180000, 3194,
          27,   14992, 150000, 10,     5652, 2173, 4,     160000, 18, 15,    100000, 105,    50000};
}

Status GenerateCriteoData(const DataGenOptions& options, DataGenReport* report) {
  Stopwatch watch;
  if (options.out_dir.empty()) return InvalidArgument("datagen: out_dir is empty");
  if (options.train_rows < 0 || options.eval_rows < 0) {
    return InvalidArgument("datagen: row counts must be >= 0");
  }
  if (!(options.zipf_s > 0)) return InvalidArgument("datagen: zipf_s must be positive");
  if (!(options.target_ctr > 0 && options.target_ctr < 1)) {
    return InvalidArgument("datagen: target_ctr must be in (0, 1)");
  }
  Status status;
  std::vector<int64_t> card = ResolveCardinalities(options, &status);
  if (!status.ok()) return status;
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) return Internal(options.out_dir + ": cannot create directory: " + ec.message());

  const bool csv = options.format == DataGenOptions::kCsv;
  const char sep = csv ? ',' : '\t';
  const std::string ext = csv ? ".csv" : ".txt";
  *report = DataGenReport();
  report->train_path = (std::filesystem::path(options.out_dir) / ("train" + ext)).string();
  report->eval_path = (std::filesystem::path(options.out_dir) / ("eval" + ext)).string();

  const World world(options, std::move(card));
  const double bias =
      planted::CalibrateBias<Row>(world, options.seed, options.target_ctr, kCalibrationRows);

  SplitResult train, eval;
  status = WriteSplit(world, bias, Mix64(options.seed ^ 0x7a1a7a1aull), options.train_rows,
                      report->train_path, sep, false, &train);
  if (!status.ok()) return status;
  status = WriteSplit(world, bias, Mix64(options.seed ^ 0xe4a1e4a1ull), options.eval_rows,
                      report->eval_path, sep, true, &eval);
  if (!status.ok()) return status;

  report->train_rows = options.train_rows;
  report->eval_rows = options.eval_rows;
  report->train_ctr = options.train_rows > 0 ? double(train.positives) / options.train_rows : 0;
  report->eval_ctr = options.eval_rows > 0 ? double(eval.positives) / options.eval_rows : 0;
  report->oracle_auc = Auc(eval.probs, eval.labels);
  report->oracle_logloss = LogLoss(eval.probs, eval.labels);
  report->seconds = watch.Seconds();
  LOG(INFO) << "datagen: wrote " << report->train_path << " (" << report->train_rows
            << " rows, ctr " << report->train_ctr << ") and " << report->eval_path << " ("
            << report->eval_rows << " rows, ctr " << report->eval_ctr << "); oracle eval AUC "
            << report->oracle_auc << ", logloss " << report->oracle_logloss << ", "
            << report->seconds << " s";
  return Status::Ok();
}

}  // namespace deepfm

// The ELM-schema generator (tools/datagen.h GenerateElmData). The planted
// world: shops (each with a city, district, AOI, geohashes, brand, category,
// food kind, price level, ranks and a taste factor) selling a few items each,
// and users (gender, city, usual price, VIP flag, activity counts, a taste
// factor, and a pool of shops they clicked before, drawn by taste). A row is
// one user seeing one candidate item at one hour; its history lists are a
// sample of the user's pool.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/random.h"
#include "common/timing.h"
#include "glog/logging.h"
#include "tools/datagen.h"
#include "tools/planted.h"

namespace deepfm {
namespace {

using planted::AliasTable;
using planted::Sigmoid;

constexpr int kTaste = 8;
constexpr int kCategories = 40;
constexpr int kCities = 30;
constexpr int kPoolSize = 60;  // shops a user clicked before
constexpr int kTimeTypes = 5;
constexpr const char* kTimeTypeNames[kTimeTypes] = {"lunch", "night", "dinner", "tea", "breakfast"};
constexpr int64_t kCalibrationRows = 20000;

// Planted effect sizes (logit units); together they put the oracle AUC near
// 0.8, and each is something a DeepFM over the spec's features can learn.
constexpr double kTasteScale = 0.8;
constexpr double kShopInHistory = 1.4;
constexpr double kCategoryInHistory = 0.6;
constexpr double kBrandInHistory = 0.4;
constexpr double kTimeOfDay = 0.5;
constexpr double kPriceGap = 0.9;
constexpr double kVip = 0.2;
constexpr double kActivity = 0.15;

int TimeTypeOf(int hour) {
  if (hour >= 6 && hour < 10) return 4;    // breakfast
  if (hour >= 10 && hour < 14) return 0;   // lunch
  if (hour >= 14 && hour < 17) return 3;   // tea
  if (hour >= 17 && hour < 21) return 2;   // dinner
  return 1;                                // night
}

struct Shop {
  uint32_t id, city, district, aoi, geohash6, brand, category;
  uint64_t geohash12;
  double log_price;
  int rank7, rank30, rank90;
  float taste[kTaste];
  uint32_t first_item, num_items;
};

struct Item {
  uint32_t id, food;
  double log_price;
};

struct User {
  uint32_t id;
  int gender;  // -1: missing
  uint32_t city;
  double log_price;
  int vip, ctr30, ord30;
  double amt30;
  float taste[kTaste];
  uint32_t pool[kPoolSize];
};

struct HistoryEntry {
  uint32_t shop, item;
  int hour, weekday, timediff;
};

struct Row {
  uint32_t user, shop, item;
  int hour, weekday, day;
  std::vector<HistoryEntry> history;
};

class ElmWorld {
 public:
  ElmWorld(const ElmDataGenOptions& o) : options_(o) {
    SplitMix64 rng(Mix64(o.seed ^ 0xe1e1e1e1ull));
    const int64_t rows = std::max<int64_t>(1, o.train_rows + o.eval_rows);
    const int64_t num_shops = o.shops > 0 ? o.shops : std::clamp<int64_t>(rows / 40, 200, 50000);
    const int64_t num_users = o.users > 0 ? o.users : std::clamp<int64_t>(rows / 20, 100, 200000);
    std::vector<double> tod(kCategories * kTimeTypes);
    for (double& v : tod) v = rng.Normal();
    tod_ = std::move(tod);
    shops_.resize(num_shops);
    for (size_t s = 0; s < shops_.size(); ++s) {
      Shop& sh = shops_[s];
      sh.id = 10000 + static_cast<uint32_t>(s) * 7 % 90000;
      sh.city = static_cast<uint32_t>(rng.Next() % kCities);
      sh.district = sh.city * 20 + static_cast<uint32_t>(rng.Next() % 20);
      sh.aoi = static_cast<uint32_t>(rng.Next() % std::max<int64_t>(1, num_shops / 5));
      sh.geohash6 = static_cast<uint32_t>(rng.Next() % std::max<int64_t>(1, num_shops / 10));
      sh.geohash12 = Mix64(s ^ o.seed);
      sh.brand = static_cast<uint32_t>(rng.Next() % std::max<int64_t>(1, num_shops / 8));
      sh.category = static_cast<uint32_t>(rng.Next() % kCategories);
      sh.log_price = 3.3 + 0.5 * rng.Normal();
      sh.rank7 = static_cast<int>(rng.Next() % 1000);
      sh.rank30 = (sh.rank7 + static_cast<int>(rng.Next() % 200)) % 1000;
      sh.rank90 = (sh.rank30 + static_cast<int>(rng.Next() % 200)) % 1000;
      for (float& t : sh.taste) t = static_cast<float>(rng.Normal());
      sh.first_item = static_cast<uint32_t>(items_.size());
      sh.num_items = 1 + static_cast<uint32_t>(rng.Next() % 6);
      for (uint32_t i = 0; i < sh.num_items; ++i) {
        Item it;
        it.id = 100000 + static_cast<uint32_t>(items_.size());
        it.food = static_cast<uint32_t>(rng.Next() % std::max<int64_t>(1, num_shops / 2));
        it.log_price = sh.log_price + 0.2 * rng.Normal();
        items_.push_back(it);
      }
    }
    std::vector<double> popularity(num_shops);
    for (int64_t s = 0; s < num_shops; ++s) popularity[s] = 1.0 / std::pow(double(s + 1), 0.9);
    shop_draw_ = std::make_unique<AliasTable>(popularity);
    users_.resize(num_users);
    for (size_t u = 0; u < users_.size(); ++u) {
      User& us = users_[u];
      us.id = 10000000 + static_cast<uint32_t>(u);
      const double g = rng.Uniform();
      us.gender = g < 0.1 ? -1 : (g < 0.55 ? 0 : 1);
      us.city = static_cast<uint32_t>(rng.Next() % kCities);
      us.log_price = 3.2 + 0.5 * rng.Normal();
      us.vip = rng.Uniform() < 0.2 ? 1 : 0;
      us.ord30 = static_cast<int>(std::floor(std::exp(1.5 + rng.Normal())));
      us.ctr30 = static_cast<int>(rng.Next() % 100);
      us.amt30 = us.ord30 * std::exp(us.log_price);
      for (float& t : us.taste) t = static_cast<float>(rng.Normal());
      // The pool: shops the user clicked before, the best by taste among a
      // random sample (plus noise), so the history reflects the taste.
      std::vector<std::pair<double, uint32_t>> candidates(4 * kPoolSize);
      for (auto& c : candidates) {
        c.second = shop_draw_->Sample(rng.Next());
        c.first = TasteDot(us, shops_[c.second]) + rng.Normal();
      }
      std::partial_sort(candidates.begin(), candidates.begin() + kPoolSize, candidates.end(),
                        [](const auto& a, const auto& b) { return a.first > b.first; });
      for (int i = 0; i < kPoolSize; ++i) us.pool[i] = candidates[i].second;
    }
    std::vector<double> activity(num_users);
    for (int64_t u = 0; u < num_users; ++u) activity[u] = 1.0 / std::pow(double(u + 1), 0.6);
    user_draw_ = std::make_unique<AliasTable>(activity);
  }

  static double TasteDot(const User& u, const Shop& s) {
    double d = 0;
    for (int k = 0; k < kTaste; ++k) d += u.taste[k] * s.taste[k];
    return d / std::sqrt(double(kTaste));
  }

  void Draw(SplitMix64* rng, Row* row) const {
    row->user = user_draw_->Sample(rng->Next());
    const User& u = users_[row->user];
    row->shop = rng->Uniform() < 0.35 ? u.pool[rng->Next() % kPoolSize]
                                      : shop_draw_->Sample(rng->Next());
    const Shop& s = shops_[row->shop];
    row->item = s.first_item + static_cast<uint32_t>(rng->Next() % s.num_items);
    row->hour = static_cast<int>(rng->Next() % 24);
    row->weekday = static_cast<int>(rng->Next() % 7);
    row->day = static_cast<int>(rng->Next() % 8);
    int length = static_cast<int>(std::lround(options_.mean_history + 8.0 * rng->Normal()));
    length = std::clamp(length, 1, options_.max_history);
    row->history.resize(length);
    for (HistoryEntry& h : row->history) {
      h.shop = u.pool[rng->Next() % kPoolSize];
      const Shop& hs = shops_[h.shop];
      h.item = hs.first_item + static_cast<uint32_t>(rng->Next() % hs.num_items);
      h.hour = static_cast<int>(rng->Next() % 24);
      h.weekday = static_cast<int>(rng->Next() % 7);
      h.timediff = 1 + static_cast<int>(rng->Next() % 300);
    }
  }

  double Logit(const Row& row) const {
    const User& u = users_[row.user];
    const Shop& s = shops_[row.shop];
    const Item& it = items_[row.item];
    bool shop_seen = false, category_seen = false, brand_seen = false;
    for (const HistoryEntry& h : row.history) {
      const Shop& hs = shops_[h.shop];
      shop_seen |= h.shop == row.shop;
      category_seen |= hs.category == s.category;
      brand_seen |= hs.brand == s.brand;
    }
    double z = kTasteScale * TasteDot(u, s);
    z += kShopInHistory * shop_seen + kCategoryInHistory * category_seen +
         kBrandInHistory * brand_seen;
    z += kTimeOfDay * tod_[s.category * kTimeTypes + TimeTypeOf(row.hour)];
    z -= kPriceGap * std::abs(it.log_price - u.log_price);
    z += kVip * u.vip + kActivity * std::log1p(double(u.ord30));
    return z;
  }

  // The 39 columns of DESIGN.md §3b, in order.
  void Write(const Row& row, int label, std::string* out) const {
    const User& u = users_[row.user];
    const Shop& s = shops_[row.shop];
    const Item& it = items_[row.item];
    auto num = [out](int64_t v) {
      char tmp[24];
      const auto r = std::to_chars(tmp, tmp + sizeof(tmp), v);
      out->append(tmp, r.ptr);
    };
    auto dec = [out](double v) {
      char tmp[32];
      const int n = snprintf(tmp, sizeof(tmp), "%.2f", v);
      out->append(tmp, n);
    };
    auto sep = [out] { out->push_back(','); };
    out->push_back(static_cast<char>('0' + label));
    sep(); num(u.id);
    sep(); if (u.gender >= 0) num(u.gender);
    sep(); num(u.city);
    sep(); dec(std::exp(u.log_price));
    sep(); num(u.vip);
    sep(); num(u.ctr30);
    sep(); num(u.ord30);
    sep(); dec(u.amt30);
    sep(); num(s.id);
    sep(); num(it.id);
    sep(); num(s.city);
    sep(); num(s.district);
    sep(); if (s.aoi % 20 != 0) num(s.aoi);  // some shops have no AOI
    sep(); out->push_back('w'); num(s.geohash6);
    sep(); out->push_back('w'); num(static_cast<int64_t>(s.geohash12 >> 24));
    sep(); num(s.brand);
    sep(); num(s.category);
    sep(); num(it.food);
    sep(); num(s.rank7);
    sep(); num(s.rank30);
    sep(); num(s.rank90);
    auto list = [&](auto token) {
      sep();
      for (size_t i = 0; i < row.history.size(); ++i) {
        if (i > 0) out->push_back(';');
        token(row.history[i]);
      }
    };
    list([&](const HistoryEntry& h) { num(shops_[h.shop].id); });
    list([&](const HistoryEntry& h) { num(items_[h.item].id); });
    list([&](const HistoryEntry& h) { num(shops_[h.shop].category); });
    list([&](const HistoryEntry& h) { num(items_[h.item].food); });
    list([&](const HistoryEntry& h) { num(shops_[h.shop].brand); });
    list([&](const HistoryEntry& h) { num(std::lround(std::exp(items_[h.item].log_price))); });
    list([&](const HistoryEntry& h) { num(shops_[h.shop].aoi); });
    list([&](const HistoryEntry& h) {
      out->push_back('w');
      num(shops_[h.shop].geohash6);
    });
    list([&](const HistoryEntry& h) { num(h.timediff); });
    list([&](const HistoryEntry& h) { num(h.hour); });
    list([&](const HistoryEntry& h) { out->append(kTimeTypeNames[TimeTypeOf(h.hour)]); });
    list([&](const HistoryEntry& h) { num(h.weekday); });
    sep(); num(20210301 + row.day);
    sep(); num(row.hour);
    sep(); out->append(kTimeTypeNames[TimeTypeOf(row.hour)]);
    sep(); num(row.weekday);
    sep(); out->push_back('w'); num(static_cast<int64_t>(row.user % 5000));
    out->push_back('\n');
  }

 private:
  const ElmDataGenOptions options_;
  std::vector<Shop> shops_;
  std::vector<Item> items_;
  std::vector<User> users_;
  std::vector<double> tod_;
  std::unique_ptr<AliasTable> shop_draw_, user_draw_;
};

struct Split {
  int64_t positives = 0;
  uint64_t bytes = 0;
  uint64_t history_tokens = 0;
  std::vector<double> probs;
  std::vector<uint8_t> labels;
};

Status WriteSplit(const ElmWorld& world, double bias, uint64_t stream_seed, int64_t rows,
                  const std::string& path, bool keep_probs, Split* result) {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!file) return Internal(tmp + ": cannot create: " + std::strerror(errno));
  SplitMix64 rng(stream_seed);
  Row row;
  std::string buf;
  buf.reserve((1 << 20) + 8192);
  bool ok = true;
  for (int64_t i = 0; i < rows && ok; ++i) {
    world.Draw(&rng, &row);
    const double p = Sigmoid(world.Logit(row) + bias);
    const int label = rng.Uniform() < p ? 1 : 0;
    result->positives += label;
    result->history_tokens += row.history.size();
    if (keep_probs) {
      result->probs.push_back(p);
      result->labels.push_back(static_cast<uint8_t>(label));
    }
    world.Write(row, label, &buf);
    if (buf.size() >= (1 << 20)) {
      ok = std::fwrite(buf.data(), 1, buf.size(), file.get()) == buf.size();
      result->bytes += buf.size();
      buf.clear();
    }
  }
  ok = ok && std::fwrite(buf.data(), 1, buf.size(), file.get()) == buf.size();
  result->bytes += buf.size();
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

Status GeneratePresetData(const std::string& preset, const DataGenOptions& options,
                          DataGenReport* report) {
  if (preset == "criteo") return GenerateCriteoData(options, report);
  // elm_exact reads the elm preset's columns (only its network differs).
  if (preset != "elm" && preset != "elm_exact") {
    return InvalidArgument("gen-data writes the criteo or the elm preset's schema, not '" + preset +
                           "'");
  }
  if (options.format != DataGenOptions::kCsv) {
    return InvalidArgument("gen-data: the elm schema is CSV only (train.py reads CSV)");
  }
  ElmDataGenOptions o;
  o.train_rows = options.train_rows;
  o.eval_rows = options.eval_rows;
  o.seed = options.seed;
  o.out_dir = options.out_dir;
  return GenerateElmData(o, report);
}

Status GenerateElmData(const ElmDataGenOptions& o, DataGenReport* report) {
  Stopwatch watch;
  if (o.out_dir.empty()) return InvalidArgument("datagen: out_dir is empty");
  if (o.train_rows < 0 || o.eval_rows < 0) return InvalidArgument("datagen: row counts must be >= 0");
  if (!(o.target_ctr > 0 && o.target_ctr < 1)) {
    return InvalidArgument("datagen: target_ctr must be in (0, 1)");
  }
  if (o.max_history < 1 || o.mean_history < 1 || o.mean_history > o.max_history) {
    return InvalidArgument("datagen: need 1 <= mean_history <= max_history");
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return Internal(o.out_dir + ": cannot create directory: " + ec.message());
  *report = DataGenReport();
  report->train_path = (std::filesystem::path(o.out_dir) / "train.csv").string();
  report->eval_path = (std::filesystem::path(o.out_dir) / "eval.csv").string();
  const ElmWorld world(o);
  const double bias = planted::CalibrateBias<Row>(world, o.seed, o.target_ctr, kCalibrationRows);
  Split train, eval;
  Status s = WriteSplit(world, bias, Mix64(o.seed ^ 0x7a1a7a1aull), o.train_rows,
                        report->train_path, false, &train);
  if (!s.ok()) return s;
  s = WriteSplit(world, bias, Mix64(o.seed ^ 0xe4a1e4a1ull), o.eval_rows, report->eval_path, true,
                 &eval);
  if (!s.ok()) return s;
  report->train_rows = o.train_rows;
  report->eval_rows = o.eval_rows;
  report->train_ctr = o.train_rows > 0 ? double(train.positives) / o.train_rows : 0;
  report->eval_ctr = o.eval_rows > 0 ? double(eval.positives) / o.eval_rows : 0;
  report->oracle_auc = planted::Auc(eval.probs, eval.labels);
  report->oracle_logloss = planted::LogLoss(eval.probs, eval.labels);
  const int64_t all = o.train_rows + o.eval_rows;
  report->bytes_per_row = all > 0 ? double(train.bytes + eval.bytes) / all : 0;
  report->mean_list_length =
      all > 0 ? double(train.history_tokens + eval.history_tokens) / all : 0;
  report->seconds = watch.Seconds();
  return Status::Ok();
}

}  // namespace deepfm

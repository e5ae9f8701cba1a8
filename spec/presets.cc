// The compiled-in feature specs. They are data, in the same text format a
// user's spec file has, so a user can start from `deepfm spec --print=elm`
// style copies of them (the README shows both).
#include <string>
#include <vector>

#include "spec/feature_spec.h"

namespace deepfm {
namespace {

// The DeepRec model-zoo DeepFM on Criteo: label, I1..I13, C1..C26; one table
// holds every field, each field hashing with its own position as the seed
// (the layout, keys and checkpoints of the trainer before specs existed).
std::string CriteoText() {
  std::string t = "name: \"criteo\"\nlayout { }\n";
  t += "columns { name: \"label\" label { } }\n";
  for (int i = 1; i <= 13; ++i) {
    t += "columns { name: \"I" + std::to_string(i) + "\" numeric { transform: LOG1P } }\n";
  }
  for (int i = 1; i <= 26; ++i) {
    t += "columns { name: \"C" + std::to_string(i) + "\" categorical { } }\n";
  }
  t += "tables { name: \"deepfm/embedding\" dim: 16 seed_per_column: true";
  for (int i = 1; i <= 26; ++i) t += " columns: \"C" + std::to_string(i) + "\"";
  t += " }\nmodel { hidden_units: [1024, 256, 32] }\n";
  return t;
}

// DeepRec tianchi/DeepFM/train.py on the Ali ELM data (DESIGN.md §3b): its
// 39 columns in order with train.py's record_defaults, its nine shared
// embeddings, mean-pooled history lists, the two 5-word vocabularies, and
// the 12 numeric inputs ($T: raw in elm_exact, log1p in elm).
constexpr char kElmColumns[] = R"pb(
layout { separator: "," }
columns { name: "clicked" label { } }
columns { name: "user_id" categorical { drop_empty: true } }
columns { name: "gender" numeric { default_value: -99 $T } }
columns { name: "visit_city" categorical { default_value: "0" drop_empty: true } }
columns { name: "avg_price" numeric { $T } }
columns { name: "is_supervip" numeric { $T } }
columns { name: "ctr_30" numeric { $T } }
columns { name: "ord_30" numeric { $T } }
columns { name: "total_amt_30" numeric { $T } }
columns { name: "shop_id" categorical { drop_empty: true } }
columns { name: "item_id" categorical { drop_empty: true } }
columns { name: "city_id" categorical { default_value: "0" drop_empty: true } }
columns { name: "district_id" categorical { default_value: "0" drop_empty: true } }
columns { name: "shop_aoi_id" categorical { drop_empty: true } }
columns { name: "shop_geohash_6" categorical { drop_empty: true } }
columns { name: "shop_geohash_12" categorical { drop_empty: true } }
columns { name: "brand_id" categorical { default_value: "0" drop_empty: true } }
columns { name: "category_1_id" categorical { default_value: "0" drop_empty: true } }
columns { name: "merge_standard_food_id" categorical { default_value: "0" drop_empty: true } }
columns { name: "rank_7" numeric { $T } }
columns { name: "rank_30" numeric { $T } }
columns { name: "rank_90" numeric { $T } }
columns { name: "shop_id_list" list { separator: ";" combiner: MEAN } }
columns { name: "item_id_list" list { separator: ";" combiner: MEAN } }
columns { name: "category_1_id_list" list { separator: ";" combiner: MEAN } }
columns { name: "merge_standard_food_id_list" list { separator: ";" combiner: MEAN } }
columns { name: "brand_id_list" list { separator: ";" combiner: MEAN } }
columns { name: "price_list" numeric_list { separator: ";" default_value: "0" $T } }
columns { name: "shop_aoi_id_list" list { separator: ";" combiner: MEAN } }
columns { name: "shop_geohash6_list" list { separator: ";" combiner: MEAN } }
columns { name: "timediff_list" list { separator: ";" combiner: MEAN default_value: "0" } }
columns { name: "hours_list" numeric_list { separator: ";" default_value: "-0" $T } }
columns { name: "time_type_list" list { separator: ";" combiner: MEAN
          vocabulary: ["lunch", "night", "dinner", "tea", "breakfast"] } }
columns { name: "weekdays_list" ignored { } }
columns { name: "times" categorical { default_value: "0" drop_empty: true } }
columns { name: "hours" numeric { $T } }
columns { name: "time_type" categorical { drop_empty: true
          vocabulary: ["lunch", "night", "dinner", "tea", "breakfast"] } }
columns { name: "weekdays" ignored { } }
columns { name: "geohash12" categorical { drop_empty: true } }
tables { name: "shop_id" dim: 16 columns: ["shop_id", "shop_id_list"] }
tables { name: "item_id" dim: 16 columns: ["item_id", "item_id_list"] }
tables { name: "category_1_id" dim: 16 columns: ["category_1_id", "category_1_id_list"] }
tables { name: "merge_standard_food_id" dim: 16
         columns: ["merge_standard_food_id", "merge_standard_food_id_list"] }
tables { name: "brand_id" dim: 16 columns: ["brand_id", "brand_id_list"] }
tables { name: "shop_aoi_id" dim: 16 columns: ["shop_aoi_id", "shop_aoi_id_list"] }
tables { name: "shop_geohash_12" dim: 16 columns: ["shop_geohash_12", "geohash12"] }
tables { name: "shop_geohash_6" dim: 16 columns: ["shop_geohash_6", "shop_geohash6_list"] }
tables { name: "city" dim: 16 columns: ["visit_city", "city_id"] }
tables { name: "user_id" dim: 16 columns: ["user_id"] }
tables { name: "district_id" dim: 16 columns: ["district_id"] }
tables { name: "times" dim: 16 columns: ["times"] }
tables { name: "timediff_list" dim: 16 columns: ["timediff_list"] }
tables { name: "time_type" dim: 16 columns: ["time_type"] }
tables { name: "time_type_list" dim: 16 columns: ["time_type_list"] }
)pb";

// train.py's network exactly (DESIGN.md §3b): raw numeric inputs, batch
// norm after every hidden ReLU, a vector FM, the weightless wide sum, a
// final DNN over concat(dnn, linear, fm), MSE of the sigmoid.
constexpr char kElmExactModel[] = R"pb(
model {
  hidden_units: [512, 128, 32]
  final_hidden_units: [128, 64]
  batch_norm: true
  fm: VECTOR
  linear: WEIGHTLESS
  loss: MSE
  # train.py's wide input: the 15 hashed columns other than the shared
  # pairs' history lists, and the two vocabulary columns.
  linear_columns: ["user_id", "visit_city", "shop_id", "item_id", "city_id", "district_id",
                   "shop_aoi_id", "shop_geohash_6", "shop_geohash_12", "brand_id",
                   "category_1_id", "merge_standard_food_id", "timediff_list", "time_type_list",
                   "times", "time_type", "geohash12"]
}
)pb";

// The default: train.py's network with the changes that made it learn, each
// measured on the same data (README, "From train.py's network to the
// default"): logloss, log1p of every numeric input, learned first-order
// weights, and no batch norm.
constexpr char kElmModel[] = R"pb(
model {
  hidden_units: [512, 128, 32]
  final_hidden_units: [128, 64]
  fm: VECTOR
  linear: LEARNED
  loss: LOGLOSS
}
)pb";

std::string ElmText(const std::string& name, bool exact) {
  std::string t = "name: \"" + name + "\"\n" + kElmColumns;
  const std::string transform = exact ? "" : "transform: LOG1P ";
  for (size_t at; (at = t.find("$T ")) != std::string::npos;) t.replace(at, 3, transform);
  return t + (exact ? kElmExactModel : kElmModel);
}

}  // namespace

std::vector<std::string> FeatureSpec::PresetNames() { return {"criteo", "elm", "elm_exact"}; }

std::string FeatureSpec::PresetText(const std::string& name) {
  if (name == "criteo") return CriteoText();
  if (name == "elm") return ElmText("elm", /*exact=*/false);
  if (name == "elm_exact") return ElmText("elm_exact", /*exact=*/true);
  return "";
}

}  // namespace deepfm

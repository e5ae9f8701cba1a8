#include "spec/feature_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "gmock/gmock.h"

namespace deepfm {
namespace {

using ::testing::HasSubstr;
using Kind = FeatureSpec::Kind;

FeatureSpecPtr Preset(const std::string& name) {
  FeatureSpecPtr s;
  const Status st = FeatureSpec::Load(name, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

Status ParseError(const std::string& text) {
  FeatureSpecPtr s;
  return FeatureSpec::Parse(text, "test.pbtxt", &s);
}

const FeatureSpec::ColumnInfo& Column(const FeatureSpec& s, const std::string& name) {
  for (const auto& c : s.columns()) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no column " << name;
  return s.columns()[0];
}

TEST(FeatureSpecTest, CriteoIsTheModelZooLayout) {
  FeatureSpecPtr s = Preset("criteo");
  EXPECT_EQ(s->num_columns(), 40);
  EXPECT_EQ(s->label_column(), 0);
  EXPECT_EQ(s->num_numeric(), 13);
  EXPECT_EQ(s->num_features(), 26);
  ASSERT_EQ(s->tables().size(), 1u);
  EXPECT_EQ(s->tables()[0].name, "deepfm/embedding");
  EXPECT_TRUE(s->tables()[0].fixed_width) << "every Criteo token, empty included, is one key";
  EXPECT_EQ(s->dnn_input_width(), 26 * 16 + 13);
  EXPECT_EQ(s->separator(), 0) << "decided per file (CSV or Criteo's TSV)";
  EXPECT_EQ(s->hidden_units(), (std::vector<int>{1024, 256, 32}));
  for (int f = 0; f < 26; ++f) {
    const auto& c = Column(*s, "C" + std::to_string(f + 1));
    EXPECT_EQ(c.feature, f);
    EXPECT_EQ(c.member, f);
    EXPECT_EQ(c.key_seed, static_cast<uint32_t>(f)) << "the field ordinal, as before specs";
    EXPECT_FALSE(c.drop_empty);
  }
  for (int d = 0; d < 13; ++d) {
    const auto& c = Column(*s, "I" + std::to_string(d + 1));
    EXPECT_EQ(c.numeric, d);
    EXPECT_EQ(c.transform, spec::LOG1P);
  }
}

TEST(FeatureSpecTest, ElmIsTrainPysColumnsTablesAndDefaults) {
  FeatureSpecPtr s = Preset("elm");
  EXPECT_EQ(s->num_columns(), 39);
  EXPECT_EQ(s->num_features(), 24) << "18 from the shared pairs, 4 own, 2 vocabulary";
  EXPECT_EQ(s->num_numeric(), 12) << "10 numeric columns and the means of 2 numeric lists";
  EXPECT_EQ(s->tables().size(), 15u) << "9 shared pairs, 4 own tables, 2 vocabulary tables";
  EXPECT_EQ(s->dnn_input_width(), 396);
  EXPECT_EQ(s->separator(), ',');
  EXPECT_FALSE(s->header());
  // The shared pairs: both members in one table, hashing with one seed.
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"shop_id", "shop_id_list"},        {"item_id", "item_id_list"},
      {"category_1_id", "category_1_id_list"}, {"merge_standard_food_id", "merge_standard_food_id_list"},
      {"brand_id", "brand_id_list"},      {"shop_aoi_id", "shop_aoi_id_list"},
      {"shop_geohash_12", "geohash12"},   {"shop_geohash_6", "shop_geohash6_list"},
      {"visit_city", "city_id"}};
  std::set<int> tables;
  for (const auto& [a, b] : pairs) {
    const auto& ca = Column(*s, a);
    const auto& cb = Column(*s, b);
    EXPECT_EQ(ca.table, cb.table) << a << " and " << b;
    EXPECT_EQ(ca.key_seed, cb.key_seed) << a << " and " << b;
    tables.insert(ca.table);
  }
  EXPECT_EQ(tables.size(), 9u);
  // train.py's record_defaults.
  EXPECT_EQ(Column(*s, "gender").numeric_default, -99);
  EXPECT_EQ(Column(*s, "visit_city").default_value, "0");
  EXPECT_TRUE(Column(*s, "user_id").drop_empty);
  EXPECT_EQ(Column(*s, "timediff_list").default_value, "0");
  EXPECT_EQ(Column(*s, "hours_list").default_value, "-0");
  EXPECT_EQ(Column(*s, "hours_list").kind, Kind::kNumericList);
  EXPECT_EQ(Column(*s, "weekdays").kind, Kind::kIgnored);
  EXPECT_EQ(Column(*s, "weekdays_list").kind, Kind::kIgnored);
  EXPECT_EQ(Column(*s, "time_type").vocabulary.size(), 5u);
  EXPECT_EQ(Column(*s, "shop_id_list").combiner, spec::MEAN);
  EXPECT_EQ(Column(*s, "shop_id_list").list_separator, ';');
  for (const auto& t : s->tables()) EXPECT_FALSE(t.fixed_width) << t.name;
  EXPECT_EQ(s->hidden_units(), (std::vector<int>{512, 128, 32}));
}

TEST(FeatureSpecTest, FingerprintIgnoresFormattingAndFollowsContent) {
  const std::string a =
      "name: \"mine\" columns { name: \"y\" label {} } columns { name: \"c\" categorical {} }\n"
      "tables { name: \"t\" dim: 4 columns: \"c\" }";
  const std::string b =
      "# a comment\nname:   \"mine\"\n\ncolumns {\n  name: \"y\"\n  label { }\n}\n"
      "columns { name: \"c\"\n categorical { } }\ntables { name: \"t\" dim: 4 columns: [\"c\"] }\n";
  FeatureSpecPtr sa, sb, sc;
  ASSERT_TRUE(FeatureSpec::Parse(a, "a", &sa).ok());
  ASSERT_TRUE(FeatureSpec::Parse(b, "b", &sb).ok());
  EXPECT_EQ(sa->fingerprint(), sb->fingerprint());
  EXPECT_EQ(sa->fingerprint().size(), 16u);
  std::string c = a;
  c.replace(c.find("dim: 4"), 6, "dim: 8");
  ASSERT_TRUE(FeatureSpec::Parse(c, "c", &sc).ok());
  EXPECT_NE(sa->fingerprint(), sc->fingerprint());
  EXPECT_NE(Preset("criteo")->fingerprint(), Preset("elm")->fingerprint());
  // The canonical text parses back to the same spec.
  FeatureSpecPtr round;
  ASSERT_TRUE(FeatureSpec::Parse(sa->Text(), "text", &round).ok());
  EXPECT_EQ(round->fingerprint(), sa->fingerprint());
  const std::string diff = DescribeSpecDifference(sa->proto(), sc->proto());
  EXPECT_THAT(diff, HasSubstr("dim"));
  EXPECT_THAT(diff, HasSubstr("4"));
  EXPECT_THAT(diff, HasSubstr("8"));
  EXPECT_EQ(DescribeSpecDifference(sa->proto(), sb->proto()), "");
}

TEST(FeatureSpecTest, MembersTakeFileOrderAndSharedSeeds) {
  FeatureSpecPtr s;
  ASSERT_TRUE(FeatureSpec::Parse(
                  "columns { name: \"a_list\" list { } } columns { name: \"y\" label { } }"
                  "columns { name: \"a\" categorical { } } columns { name: \"b\" categorical { } }"
                  "tables { name: \"other\" dim: 2 columns: \"b\" }"
                  "tables { name: \"shared\" dim: 2 columns: [\"a\", \"a_list\"] key_seed: 77 }",
                  "t", &s)
                  .ok());
  const auto& list = Column(*s, "a_list");
  const auto& single = Column(*s, "a");
  EXPECT_EQ(list.member, 0) << "a_list comes first in the file";
  EXPECT_EQ(single.member, 1);
  EXPECT_EQ(list.key_seed, 77u);
  EXPECT_EQ(single.key_seed, 77u);
  EXPECT_EQ(Column(*s, "b").key_seed, 0u) << "default seed: the table's position";
  EXPECT_EQ(s->tables()[1].columns, (std::vector<int>{0, 2}));
  EXPECT_EQ(list.feature, 0);
  EXPECT_EQ(single.feature, 1);
  EXPECT_EQ(Column(*s, "b").feature, 2);
}

TEST(FeatureSpecTest, RefusesSpecsThatDoNotResolve) {
  const std::string label = "columns { name: \"y\" label { } }";
  struct Case {
    std::string text, expect;
  };
  const Case cases[] = {
      {"columns { name: \"c\" categorical { } } tables { name: \"t\" dim: 2 columns: \"c\" }",
       "no label column"},
      {label + label, "two columns are named y"},
      {label + "columns { name: \"y2\" label { } }", "second label"},
      {label + "columns { name: \"c\" categorical { } }", "no tables"},
      {label + "columns { name: \"c\" categorical { } } columns { name: \"d\" categorical { } }"
               "tables { name: \"t\" dim: 2 columns: \"c\" }",
       "column d is in no table"},
      {label + "columns { name: \"c\" categorical { } }"
               "tables { name: \"t\" dim: 2 columns: \"c\" } tables { name: \"u\" dim: 2 columns: \"c\" }",
       "column c is in two tables (t and u)"},
      {label + "columns { name: \"c\" categorical { } } tables { name: \"t\" dim: 2 columns: \"x\" }",
       "names column x, which does not exist"},
      {label + "columns { name: \"n\" numeric { } } tables { name: \"t\" dim: 2 columns: \"n\" }",
       "column n is not categorical or a list"},
      {label + "columns { name: \"c\" categorical { } } columns { name: \"d\" categorical { } }"
               "tables { name: \"t\" dim: 2 columns: \"c\" } tables { name: \"u\" dim: 3 columns: \"d\" }",
       "the FM needs one dimension"},
      {label + "columns { name: \"c\" categorical { } } tables { name: \"t\" dim: 0 columns: \"c\" }",
       "dim must be in [1, 4096]"},
      {"layout { separator: \";;\" }" + label, "layout.separator must be one byte"},
      {"layout { separator: \",\" }" + label + "columns { name: \"l\" list { separator: \",\" } }"
       "tables { name: \"t\" dim: 2 columns: \"l\" }",
       "its list separator is the column separator"},
      {label + "columns { name: \"z\" }", "has no kind"},
      {"columns { nme: \"y\" }", "line 1 column"},
  };
  for (const Case& c : cases) {
    const Status s = ParseError(c.text);
    EXPECT_FALSE(s.ok()) << c.text;
    EXPECT_THAT(s.message(), HasSubstr(c.expect)) << c.text;
    EXPECT_THAT(s.message(), HasSubstr("test.pbtxt")) << "errors name the spec's source";
  }
}

TEST(FeatureSpecTest, LoadsAFileAndNamesPresetsWhenThereIsNone) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("spec_" + std::to_string(getpid()) + ".pbtxt")).string();
  std::ofstream(path) << "columns { name: \"y\" label { } } columns { name: \"c\" categorical { } }"
                         "tables { name: \"t\" dim: 3 columns: \"c\" }";
  FeatureSpecPtr s;
  ASSERT_TRUE(FeatureSpec::Load(path, &s).ok());
  EXPECT_EQ(s->embedding_dim(), 3);
  std::filesystem::remove(path);
  const Status missing = FeatureSpec::Load(path, &s);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr("criteo, elm"));
}

TEST(FeatureSpecTest, AutoPicksThePresetByColumnCount) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("spec_auto_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& line) {
    std::ofstream((dir / name).string()) << line << "\n";
    return (dir / name).string();
  };
  FeatureSpecPtr s;
  ASSERT_TRUE(ResolveFeatureSpec("auto", write("c.csv", "1" + std::string(39, ',')), &s).ok());
  EXPECT_EQ(s->name(), "criteo");
  ASSERT_TRUE(ResolveFeatureSpec("auto", write("t.txt", "1" + std::string(39, '\t')), &s).ok());
  EXPECT_EQ(s->name(), "criteo");
  ASSERT_TRUE(ResolveFeatureSpec("auto", write("e.csv", "0" + std::string(38, ',')), &s).ok());
  EXPECT_EQ(s->name(), "elm");
  const Status other = ResolveFeatureSpec("auto", write("o.csv", "1,2,3"), &s);
  EXPECT_FALSE(other.ok());
  EXPECT_THAT(other.message(), HasSubstr("3 columns"));
  EXPECT_THAT(other.message(), HasSubstr("--feature_spec=PATH"));
  ASSERT_TRUE(ResolveFeatureSpec("elm", write("ignored.csv", "1,2,3"), &s).ok())
      << "a named spec is not second-guessed";
  EXPECT_EQ(s->name(), "elm");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deepfm

// The elm preset end to end in one process: a Trainer over two in-process
// shards (real gRPC) trains ELM-schema data from the planted generator, its
// fifteen tables (nine of them shared by two columns) land on the shards,
// and the checkpoint they save restores whole onto 1, 2 and 3 shards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "common/checkpoint_manifest.h"
#include "common/routing.h"
#include "ps/checkpoint.h"
#include "tests/support/loopback_shards.h"
#include "tests/support/shard_copy.h"
#include "tools/datagen.h"
#include "worker/trainer.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;
using testing_util::Copy;
using testing_util::RowCopy;
using testing_util::ShardCopy;

class ElmTrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("deepfm_elm_test_" + std::to_string(getpid())));
    ElmDataGenOptions o;
    o.train_rows = 12000;
    o.eval_rows = 3000;
    o.out_dir = dir_->string();
    o.seed = 4;
    o.users = 300;
    o.shops = 200;
    DataGenReport r;
    const Status s = GenerateElmData(o, &r);
    ASSERT_TRUE(s.ok()) << s.ToString();
    oracle_auc_ = r.oracle_auc;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static fs::path* dir_;
  static double oracle_auc_;
};
fs::path* ElmTrainTest::dir_ = nullptr;
double ElmTrainTest::oracle_auc_ = 0;

TEST_F(ElmTrainTest, TrainsFifteenTablesAndRestoresThemWholeOntoAnyShardCount) {
  FeatureSpecPtr spec;
  ASSERT_TRUE(FeatureSpec::Load("elm", &spec).ok());
  const fs::path job = *dir_ / "job";
  fs::create_directories(job);
  testing_util::LoopbackShards shards(2, ps::OptimizerType::kAdamAsync, 0.01f,
                                      kDefaultDenseSliceBytes, job.string());
  PsClientOptions co;
  co.hosts = shards.hosts();
  std::unique_ptr<PsClient> client;
  ASSERT_TRUE(PsClient::Connect(co, &client).ok());
  TrainerOptions t;
  t.spec = spec;
  t.model.hidden_units = {32, 16};
  t.train_data.files = {(*dir_ / "train.csv").string()};
  t.train_data.batch_size = 256;
  t.staleness = 0;
  t.log_every = 0;
  t.seed = 3;
  t.checkpoint_dir = job.string();
  t.optimizer_name = "adamasync";
  Trainer trainer(t, client.get());
  Status s = trainer.Setup();
  ASSERT_TRUE(s.ok()) << s.ToString();
  TrainResult tr;
  s = trainer.Train(&tr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(tr.rows, 12000);
  EXPECT_EQ(tr.bad_lines, 0);
  // DeepRec's embedding fusion: one Pull and one Push per shard per step,
  // every table in each.
  std::vector<ps::StatsResponse> stats;
  ASSERT_TRUE(client->Stats(&stats).ok());
  for (const ps::StatsResponse& st : stats) {
    EXPECT_EQ(st.pull_requests(), static_cast<uint64_t>(tr.local_steps)) << "shard " << st.shard_index();
    EXPECT_EQ(st.push_requests(), static_cast<uint64_t>(tr.local_steps)) << "shard " << st.shard_index();
  }
  ReaderOptions eval;
  eval.files = {(*dir_ / "eval.csv").string()};
  EvalResult er;
  s = trainer.Evaluate(eval, &er);
  ASSERT_TRUE(s.ok()) << s.ToString();
  printf("elm: oracle AUC %.4f, trained AUC %.4f over %lld rows\n", oracle_auc_, er.auc,
         static_cast<long long>(er.rows));
  EXPECT_EQ(er.rows, 3000);
  EXPECT_GT(er.auc, 0.6) << "the planted history and taste signal must be learnt from";

  // Every table of the spec is on the shards; the shared ones hold the keys
  // of both their columns, the vocabulary ones at most their 5 words.
  std::map<std::string, size_t> rows_of;
  ShardCopy before[2] = {Copy(shards.shard(0)), Copy(shards.shard(1))};
  std::map<std::string, std::map<uint64_t, RowCopy>> all;
  for (const ShardCopy& c : before) {
    for (const auto& [name, tc] : c.tables) all[name].insert(tc.rows.begin(), tc.rows.end());
  }
  ASSERT_EQ(all.size(), 15u);
  for (const auto& [name, rows] : all) EXPECT_FALSE(rows.empty()) << name;
  EXPECT_LE(all["time_type"].size(), 5u);
  EXPECT_LE(all["time_type_list"].size(), 5u);
  EXPECT_GE(all["shop_id"].size(), 150u) << "candidate shops and history shops, one table";

  // The final checkpoint, restored onto 1, 2 and 3 shards, compared whole.
  std::string folder;
  ASSERT_TRUE(LatestCheckpoint(job.string(), &folder).ok());
  Manifest m;
  ASSERT_TRUE(ReadAndVerifyManifest(folder, &m).ok());
  EXPECT_EQ(m.feature_spec, spec->fingerprint());
  EXPECT_TRUE(fs::exists(job / kFeatureSpecCopy)) << "the job folder keeps the spec it trained under";
  for (uint32_t n : {1u, 2u, 3u}) {
    SCOPED_TRACE(std::to_string(n) + " shards");
    Router router(n);
    std::map<std::string, std::map<uint64_t, RowCopy>> after;
    for (uint32_t i = 0; i < n; ++i) {
      ps::ShardOptions so;
      so.shard_index = i;
      so.num_shards = n;
      so.optimizer.type = ps::OptimizerType::kAdamAsync;
      so.optimizer.learning_rate = 0.01f;
      Status cs;
      std::unique_ptr<ps::Shard> shard = ps::Shard::Create(so, &cs);
      ASSERT_TRUE(cs.ok());
      uint64_t rows = 0;
      s = ps::RestoreShard(&shard, folder, &rows);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(shard->global_step(), tr.global_step);
      for (const auto& [name, tc] : Copy(*shard).tables) {
        for (const auto& [k, row] : tc.rows) {
          EXPECT_EQ(router.ShardOfKey(k), i) << name;
          EXPECT_TRUE(after[name].emplace(k, row).second) << name << ": a key on two shards";
        }
      }
    }
    ASSERT_EQ(after.size(), all.size());
    for (const auto& [name, rows] : all) {
      ASSERT_EQ(after[name].size(), rows.size()) << name;
      for (const auto& [k, row] : rows) {
        ASSERT_TRUE(after[name].at(k) == row) << name << " key " << k;
      }
    }
  }
}

}  // namespace
}  // namespace deepfm

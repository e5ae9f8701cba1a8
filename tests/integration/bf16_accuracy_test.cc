// BF16 training reaches the accuracy of FP32: same data, same seed, one
// in-process shard and one in-process worker, the default DeepFM shape.
#include <gtest/gtest.h>

#include <filesystem>

#include "ps/ps_server.h"
#include "tools/datagen.h"
#include "worker/trainer.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  EvalResult eval;
  TrainResult train;
};

Outcome TrainOnce(const std::string& dir, bool bf16) {
  ps::ShardOptions so;
  so.optimizer.type = ps::OptimizerType::kAdamAsync;
  so.optimizer.learning_rate = 0.001f;
  Status s;
  auto server = ps::PsServer::Start(ps::ServerOptions(), ps::Shard::Create(so, &s), &s);
  EXPECT_TRUE(s.ok());
  PsClientOptions co;
  co.hosts = {server->address()};
  co.wire_dtype = bf16 ? ps::BF16 : ps::F32;
  std::unique_ptr<PsClient> client;
  EXPECT_TRUE(PsClient::Connect(co, &client).ok());
  TrainerOptions t;
  t.model.bf16 = bf16;
  t.train_data.files = {dir + "/train.csv"};
  t.staleness = 0;  // the two runs differ only by precision
  t.seed = 17;
  t.log_every = 0;
  Trainer trainer(t, client.get());
  Outcome o;
  EXPECT_TRUE(trainer.Setup().ok());
  s = trainer.Train(&o.train);
  EXPECT_TRUE(s.ok()) << s.ToString();
  ReaderOptions eval;
  eval.files = {dir + "/eval.csv"};
  s = trainer.Evaluate(eval, &o.eval);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return o;
}

TEST(Bf16AccuracyTest, MatchesFp32WithinTwoThousandths) {
  const std::string dir = (fs::temp_directory_path() / ("bf16_acc_" + std::to_string(getpid()))).string();
  DataGenOptions g;
  g.train_rows = 200000;  // 391 steps of 512: enough for AUC differences of 0.001 to be resolved
  g.eval_rows = 50000;
  g.out_dir = dir;
  g.seed = 31;
  DataGenReport r;
  ASSERT_TRUE(GenerateCriteoData(g, &r).ok());
  const Outcome fp32 = TrainOnce(dir, false);
  const Outcome bf16 = TrainOnce(dir, true);
  fs::remove_all(dir);
  printf("fp32: AUC %.5f logloss %.5f | bf16: AUC %.5f logloss %.5f | oracle AUC %.5f\n",
         fp32.eval.auc, fp32.eval.logloss, bf16.eval.auc, bf16.eval.logloss, r.oracle_auc);
  printf("wire bytes per step, pull+push: fp32 %llu + %llu, bf16 %llu + %llu\n",
         static_cast<unsigned long long>(fp32.train.split.pull_bytes),
         static_cast<unsigned long long>(fp32.train.split.push_bytes),
         static_cast<unsigned long long>(bf16.train.split.pull_bytes),
         static_cast<unsigned long long>(bf16.train.split.push_bytes));
  EXPECT_GT(fp32.eval.auc, 0.72);  // both learned something real
  EXPECT_NEAR(bf16.eval.auc, fp32.eval.auc, 0.002);
  EXPECT_NEAR(bf16.eval.logloss, fp32.eval.logloss, 0.002);
  // bf16 halves the bytes on the wire (keys stay 8 bytes, so a bit more than half).
  EXPECT_LT(bf16.train.split.pull_bytes, 0.56 * fp32.train.split.pull_bytes);
  EXPECT_LT(bf16.train.split.push_bytes, 0.56 * fp32.train.split.push_bytes);
}

}  // namespace
}  // namespace deepfm

// Two in-process parameter-server shards and an in-process worker (Trainer +
// PsClient over real gRPC) train DeepFM on generated data.
#include <gtest/gtest.h>

#include <filesystem>
#include <chrono>
#include <fstream>
#include <thread>

#include "ps/ps_server.h"
#include "tests/support/loopback_shards.h"
#include "tools/datagen.h"
#include "worker/heartbeat.h"
#include "worker/trainer.h"

namespace deepfm {
namespace {

namespace fs = std::filesystem;

class TrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::temp_directory_path() / ("deepfm_train_test_" + std::to_string(getpid()))).string());
    DataGenOptions o;
    o.train_rows = 60000;
    o.eval_rows = 20000;
    o.out_dir = *dir_;
    o.seed = 11;
    // Small vocabularies so a few hundred steps see most values several times.
    o.cardinalities.assign(26, 0);
    for (int f = 0; f < 26; ++f) o.cardinalities[f] = 20 + 40 * f;
    DataGenReport r;
    Status s = GenerateCriteoData(o, &r);
    ASSERT_TRUE(s.ok()) << s.ToString();
    oracle_auc_ = r.oracle_auc;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  void StartShards(int n, ps::OptimizerType opt, float lr) {
    shards_.reset();
    shards_ = std::make_unique<testing_util::LoopbackShards>(n, opt, lr);
    hosts_ = shards_->hosts();
  }

  // A client of the shards StartShards started; null (and a test failure) if it cannot connect.
  std::unique_ptr<PsClient> ConnectToShards() {
    PsClientOptions co;
    co.hosts = hosts_;
    std::unique_ptr<PsClient> client;
    const Status s = PsClient::Connect(co, &client);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return client;
  }

  TrainerOptions Options(int64_t steps, int staleness) {
    TrainerOptions t;
    t.model.hidden_units = {64, 32};
    t.train_data.files = {*dir_ + "/train.csv"};
    t.train_data.batch_size = 256;
    t.train_data.num_epochs = 5;
    t.steps = steps;
    t.staleness = staleness;
    t.seed = 3;
    t.log_every = 0;
    return t;
  }

  static std::string* dir_;
  static double oracle_auc_;
  std::unique_ptr<testing_util::LoopbackShards> shards_;
  std::vector<std::string> hosts_;
};
std::string* TrainTest::dir_ = nullptr;
double TrainTest::oracle_auc_ = 0;

TEST_F(TrainTest, TwoShardsOneWorkerLearnsThePlantedModel) {
  StartShards(2, ps::OptimizerType::kAdamAsync, 0.002f);
  std::unique_ptr<PsClient> client = ConnectToShards();
  ASSERT_NE(client, nullptr);
  // One epoch: like Criteo, the planted data is overfitted by a second one.
  Trainer trainer(Options(230, 1), client.get());
  ASSERT_TRUE(trainer.Setup().ok());
  TrainResult tr;
  Status s = trainer.Train(&tr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(tr.global_step, 230);
  EXPECT_EQ(tr.local_steps, 230);
  EXPECT_EQ(tr.bad_lines, 0);
  auto table_rows = [&] {
    std::vector<ps::StatsResponse> stats;
    EXPECT_TRUE(client->Stats(&stats).ok());
    uint64_t rows = 0;
    for (const auto& st : stats) {
      EXPECT_GT(st.tables(0).rows(), 1000u) << "shard " << st.shard_index() << " holds almost nothing";
      rows += st.tables(0).rows();
    }
    return rows;
  };
  const uint64_t rows_after_training = table_rows();
  ReaderOptions eval;
  eval.files = {*dir_ + "/eval.csv"};
  EvalResult er;
  s = trainer.Evaluate(eval, &er);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(er.rows, 20000);
  // The loss falls, and held-out AUC gets most of the way to the oracle.
  double first = 0, last = 0;
  for (int i = 0; i < 30; ++i) {
    first += tr.losses[i];
    last += tr.losses[tr.losses.size() - 1 - i];
  }
  EXPECT_LT(last, first * 0.95);
  printf("oracle AUC %.4f, trained AUC %.4f, logloss %.4f\n", oracle_auc_, er.auc, er.logloss);
  EXPECT_GT(er.auc, 0.72);
  EXPECT_GT(er.auc, oracle_auc_ - 0.08);
  // Evaluation created no rows, even for keys training never saw.
  EXPECT_EQ(table_rows(), rows_after_training);
  const std::string novel = *dir_ + "/novel.csv";
  {
    std::ofstream out(novel);
    for (int i = 0; i < 100; ++i) {
      out << (i % 2);
      for (int d = 0; d < 13; ++d) out << "," << d;
      for (int f = 0; f < 26; ++f) out << ",never-seen-" << i << "-" << f;
      out << "\n";
    }
  }
  eval.files = {novel};
  s = trainer.Evaluate(eval, &er);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(er.rows, 100);
  EXPECT_EQ(table_rows(), rows_after_training) << "evaluation created rows for unseen keys";
}

TEST_F(TrainTest, StalenessZeroIsBitIdenticalAcrossRuns) {
  std::vector<float> losses[2];
  for (int run = 0; run < 2; ++run) {
    StartShards(2, ps::OptimizerType::kAdam, 0.001f);
    std::unique_ptr<PsClient> client = ConnectToShards();
    ASSERT_NE(client, nullptr);
    Trainer trainer(Options(80, 0), client.get());
    ASSERT_TRUE(trainer.Setup().ok());
    TrainResult tr;
    ASSERT_TRUE(trainer.Train(&tr).ok());
    losses[run] = tr.losses;
  }
  ASSERT_EQ(losses[0].size(), 80u);
  ASSERT_EQ(losses[0].size(), losses[1].size());
  for (size_t i = 0; i < losses[0].size(); ++i) {
    ASSERT_EQ(losses[0][i], losses[1][i]) << "step " << i;  // bit-identical, not just close
  }
}

// --smartstaged and --emb_fusion (train.py's flags) change how a step talks
// to the shards: without staging no pull leaves before the previous step's
// push is done; without fusion each table and the dense variables get a
// pull of their own, so the shards count one more pull per step (one table
// here) and the training is the same.
TEST_F(TrainTest, SmartStagedAndEmbeddingFusionChangeHowAStepTalksToTheShards) {
  constexpr int64_t kSteps = 40;
  std::vector<float> losses[2];
  for (int fused = 0; fused < 2; ++fused) {
    StartShards(2, ps::OptimizerType::kAdam, 0.001f);
    std::unique_ptr<PsClient> client = ConnectToShards();
    ASSERT_NE(client, nullptr);
    TrainerOptions o = Options(kSteps, 0);
    o.emb_fusion = fused == 1;
    Trainer trainer(o, client.get());
    ASSERT_TRUE(trainer.Setup().ok());
    TrainResult tr;
    ASSERT_TRUE(trainer.Train(&tr).ok());
    losses[fused] = tr.losses;
    std::vector<ps::StatsResponse> stats;
    ASSERT_TRUE(client->Stats(&stats).ok());
    for (const ps::StatsResponse& st : stats) {
      EXPECT_EQ(st.pull_requests(), static_cast<uint64_t>(kSteps * (fused ? 1 : 2)))
          << "shard " << st.shard_index() << (fused ? " fused" : " unfused");
    }
  }
  EXPECT_EQ(losses[0], losses[1]) << "fusion changes the requests, not the training";

  for (bool staged : {false, true}) {
    StartShards(1, ps::OptimizerType::kAdam, 0.001f);
    std::unique_ptr<PsClient> client = ConnectToShards();
    ASSERT_NE(client, nullptr);
    TrainerOptions o = Options(60, 1);
    o.smartstaged = staged;
    Trainer trainer(o, client.get());
    ASSERT_TRUE(trainer.Setup().ok());
    TrainResult tr;
    ASSERT_TRUE(trainer.Train(&tr).ok());
    if (staged) {
      EXPECT_GT(tr.pulls_ahead_of_push, 15) << "staging overlaps the next pull with the step";
    } else {
      EXPECT_EQ(tr.pulls_ahead_of_push, 0) << "without staging every pull waits for the push";
    }
  }
}

// A worker joining a job whose global step other workers have already moved
// is not resuming: it must read its data from the start. (Only a restored
// checkpoint moves a worker's data position.)
TEST_F(TrainTest, LateWorkerOfAFreshJobSkipsNoData) {
  StartShards(1, ps::OptimizerType::kAdamAsync, 0.001f);
  std::unique_ptr<PsClient> client = ConnectToShards();
  ASSERT_NE(client, nullptr);
  Trainer early(Options(5, 1), client.get());
  ASSERT_TRUE(early.Setup().ok());
  TrainResult tr;
  ASSERT_TRUE(early.Train(&tr).ok());
  ASSERT_EQ(tr.global_step, 5);
  TrainerOptions late_options = Options(0, 1);
  late_options.train_data.num_epochs = 1;
  late_options.task_index = 1;
  Trainer late(late_options, client.get());
  ASSERT_TRUE(late.Setup().ok());
  ASSERT_TRUE(late.Train(&tr).ok());
  EXPECT_EQ(tr.rows, 60000);
}

// A trainer restarted alone (a new process: another session) resumes where
// its predecessor's last applied push left off, not at the beginning.
TEST_F(TrainTest, ATrainerRestartedAloneResumesAfterItsLastAppliedPush) {
  StartShards(2, ps::OptimizerType::kAdamAsync, 0.001f);
  TrainResult tr;
  {
    std::unique_ptr<PsClient> first = ConnectToShards();
    ASSERT_NE(first, nullptr);
    Trainer before(Options(5, 1), first.get());
    ASSERT_TRUE(before.Setup().ok());
    ASSERT_TRUE(before.TrainSteps(&tr).ok());
    ASSERT_EQ(tr.rows, 5 * 256);
  }
  std::unique_ptr<PsClient> second = ConnectToShards();
  ASSERT_NE(second, nullptr);
  TrainerOptions o = Options(0, 1);
  o.train_data.num_epochs = 1;
  Trainer after(o, second.get());
  ASSERT_TRUE(after.Setup().ok());
  ASSERT_TRUE(after.Train(&tr).ok());
  EXPECT_EQ(tr.start.epoch_rows, 5 * 256);
  EXPECT_EQ(tr.rows, 60000 - 5 * 256) << "the restarted trainer retrained or skipped rows";
}

// The chief waits for every trainer's WorkerDone, but not forever: one that
// never sends a heartbeat stops the wait after hang_timeout_s, one whose
// last heartbeat says FAILED stops it at once. Both errors name the trainer.
TEST_F(TrainTest, ChiefStopsWaitingForASilentOrFailedTrainer) {
  StartShards(1, ps::OptimizerType::kAdamAsync, 0.001f);
  std::unique_ptr<PsClient> client = ConnectToShards();
  ASSERT_NE(client, nullptr);
  TrainerOptions o = Options(3, 1);
  o.num_workers = 2;
  o.hang_timeout_s = 1;
  Trainer chief(o, client.get());
  ASSERT_TRUE(chief.Setup().ok());
  TrainResult tr;
  const auto start = std::chrono::steady_clock::now();
  Status s = chief.Train(&tr);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("trainer 1 sent no heartbeat"), std::string::npos) << s.message();
  EXPECT_LT(waited, 30);

  ps::HeartbeatRequest failed;
  failed.set_task_index(1);
  failed.set_phase(ps::FAILED);
  ASSERT_TRUE(client->Heartbeat(failed).ok());
  o.hang_timeout_s = 300;
  Trainer patient(o, client.get());
  ASSERT_TRUE(patient.Setup().ok());
  s = patient.Finish(&tr);
  EXPECT_NE(s.message().find("trainer 1 failed"), std::string::npos) << s.message();
}

// Heartbeats carry the trainer's phase and progress; a trainer with nothing
// left to train still reports done, so the chief does not wait for it.
TEST_F(TrainTest, HeartbeatsFollowTheTrainerAndLateTrainersReportDone) {
  StartShards(1, ps::OptimizerType::kAdamAsync, 0.001f);
  std::unique_ptr<PsClient> client = ConnectToShards();
  ASSERT_NE(client, nullptr);
  TrainerProgress progress;
  TrainerOptions o = Options(20, 1);
  o.num_workers = 2;
  o.task_index = 1;
  o.is_chief = false;
  o.progress = &progress;
  {
    HeartbeatSender heartbeat(client.get(), 1, &progress, std::chrono::milliseconds(20));
    Trainer worker(o, client.get());
    ASSERT_TRUE(worker.Setup().ok());
    TrainResult tr;
    ASSERT_TRUE(worker.Train(&tr).ok());
    EXPECT_EQ(progress.local_step.load(), 20);
    EXPECT_GE(progress.progress.load(), 20);
    // While the sender lives, the chief shard hears the progress within a
    // few intervals, not only at the end.
    bool heard = false;
    for (int i = 0; i < 100 && !heard; ++i) {
      ps::JobStatusResponse status;
      ASSERT_TRUE(client->JobStatus(&status).ok());
      heard = status.workers_size() > 1 && status.workers(1).local_step() == 20 &&
              status.workers(1).phase() == ps::TRAINING;
      if (!heard) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(heard) << "no periodic heartbeat reached the chief shard";
    EXPECT_GT(heartbeat.sent(), 1);
    progress.Enter(ps::FINISHED);
  }  // the last heartbeat goes out here
  ps::JobStatusResponse status;
  ASSERT_TRUE(client->JobStatus(&status).ok());
  ASSERT_GE(status.workers_size(), 2);
  EXPECT_EQ(status.workers(1).phase(), ps::FINISHED);
  EXPECT_EQ(status.workers(1).local_step(), 20);
  EXPECT_TRUE(status.workers(1).done());
  // The chief arrives after the step target: nothing to train, but it is done
  // and the job completes.
  o.task_index = 0;
  o.is_chief = true;
  o.progress = nullptr;
  Trainer late_chief(o, client.get());
  ASSERT_TRUE(late_chief.Setup().ok());
  TrainResult tr;
  Status s = late_chief.Train(&tr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(tr.local_steps, 0);
  EXPECT_EQ(tr.global_step, 20);
  ASSERT_TRUE(client->JobStatus(&status).ok());
  EXPECT_TRUE(status.workers(0).done());
}

TEST_F(TrainTest, DeadShardIsAnErrorNamingItsAddress) {
  StartShards(2, ps::OptimizerType::kAdamAsync, 0.001f);
  PsClientOptions co;
  co.hosts = hosts_;
  co.rpc_deadline_ms = 2000;
  co.max_retries = 2;
  co.initial_backoff_ms = 20;
  std::unique_ptr<PsClient> client;
  ASSERT_TRUE(PsClient::Connect(co, &client).ok());
  Trainer trainer(Options(1000, 1), client.get());
  ASSERT_TRUE(trainer.Setup().ok());
  const std::string dead = hosts_[1];
  shards_->server(1).Shutdown();
  TrainResult tr;
  Status s = trainer.Train(&tr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dead), std::string::npos) << s.message();
}

TEST_F(TrainTest, ConnectFailsClearlyWhenNoServerListens) {
  PsClientOptions co;
  co.hosts = {"127.0.0.1:1"};
  co.connect_timeout_ms = 300;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace deepfm

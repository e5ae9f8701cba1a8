// End to end with the real `deepfm` program: a trained job's checkpoint
// exported, scored in batch and served. The export of a job is one model
// whatever its shard count; predict's metrics equal the trainer's own
// evaluation exactly; `train --export` leaves a servable model; `deepfm
// serve` answers over gRPC and stops cleanly on SIGTERM. Results come from
// metrics.json, the export files and RPCs, never from printed lines.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <string>
#include <vector>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "proto/serving.grpc.pb.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/shard.h"
#include "rpc/health.h"
#include "serving/batch_predict.h"
#include "serving/export_format.h"
#include "serving/serving_model.h"
#include "tests/support/free_port.h"
#include "tests/support/deepfm_command.h"
#include "tests/support/process.h"
#include "tests/support/slurp.h"

namespace {

namespace fs = std::filesystem;
using Result = deepfm::testing_util::ShellResult;

using deepfm::testing_util::Deepfm;

std::string Slurp(const fs::path& p) { return deepfm::testing_util::Slurp(p.string()); }

class ServingJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        new fs::path(fs::temp_directory_path() / ("serving_job_test_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    // 1000 eval rows: the last evaluation batch is not a multiple of the
    // model's 16-row scoring block.
    for (const char* preset : {"elm", "criteo"}) {
      const Result r =
          Deepfm(std::string("gen-data --feature_spec=") + preset +
                 " --rows=3000 --eval_rows=1000 --seed=5 --out=" + (*dir_ / preset).string());
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static fs::path Data(const std::string& preset) { return *dir_ / preset; }
  // The one version folder of an export root.
  static fs::path OnlyVersion(const fs::path& root) {
    std::string dir;
    int64_t version = 0;
    EXPECT_TRUE(deepfm::serving::FindNewestExport(root.string(), &dir, &version).ok()) << root;
    return dir;
  }
  static fs::path* dir_;
};

fs::path* ServingJobTest::dir_ = nullptr;

TEST_F(ServingJobTest, ExportsOfOneTwoAndThreeShardJobsAreOneModel) {
  std::string first;
  for (int shards : {1, 2, 3}) {
    SCOPED_TRACE(std::to_string(shards) + " shards");
    const fs::path job = *dir_ / ("shards" + std::to_string(shards));
    // Stand-alone at --staleness=0 trains bit for bit alike at any shard
    // count; the checkpoints differ in how their rows are cut.
    Result r =
        Deepfm("train --standalone --staleness=0 --no_eval --ps_num=" + std::to_string(shards) +
               " --data_location=" + Data("elm").string() + " --checkpoint=" + job.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    deepfm::Manifest m;
    std::string latest;
    ASSERT_TRUE(deepfm::LatestCheckpoint(job.string(), &latest).ok());
    ASSERT_TRUE(deepfm::ReadAndVerifyManifest(latest, &m).ok());
    ASSERT_EQ(m.num_shards, static_cast<uint32_t>(shards));
    r = Deepfm("export --checkpoint=" + job.string() + " --out=" + (job / "export").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string bytes = Slurp(OnlyVersion(job / "export") / deepfm::serving::kExportFileName);
    ASSERT_GT(bytes.size(), 1000u);
    if (first.empty()) {
      first = bytes;
    } else {
      EXPECT_TRUE(bytes == first) << "the export of a " << shards << "-shard checkpoint differs";
    }
  }
}

// predict on the job's own eval file: AUC, logloss and accuracy equal the
// trainer's evaluation bit for bit (fp32 and bf16 jobs, both presets), the
// trainer's GEMMs split over two threads and predict's over none.
TEST_F(ServingJobTest, PredictEqualsTheTrainersEvaluationExactly) {
  struct Case {
    const char* preset;
    const char* flags;
  };
  int n = 0;
  for (const Case& c : {Case{"elm", "--ps_num=2"}, Case{"elm", "--ps_num=1 --bf16"},
                        Case{"criteo", "--ps_num=2 --dnn_threads=2"}}) {
    SCOPED_TRACE(std::string(c.preset) + " " + c.flags);
    const fs::path job = *dir_ / ("eval_" + std::to_string(n++));
    Result r = Deepfm(std::string("train --export ") + c.flags + " --data_location=" +
                      Data(c.preset).string() + " --checkpoint=" + job.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    deepfm::JobMetrics metrics;
    ASSERT_TRUE(deepfm::ReadJobMetrics((job / "metrics.json").string(), &metrics).ok());
    ASSERT_TRUE(metrics.has_eval);
    deepfm::serving::PredictOptions o;
    o.model = (job / "export").string();
    o.files = {(Data(c.preset) / "eval.csv").string()};
    o.out = (job / "scores.csv").string();
    o.threads = 2;
    deepfm::serving::PredictResult p;
    const deepfm::Status s = deepfm::serving::BatchPredict(o, &p);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(p.rows, metrics.eval.rows);
    EXPECT_EQ(p.labeled_rows, p.rows);
    EXPECT_EQ(p.auc, metrics.eval.auc);
    EXPECT_EQ(p.logloss, metrics.eval.logloss)
        << std::setprecision(17) << p.logloss << " " << metrics.eval.logloss;
    EXPECT_EQ(p.accuracy, metrics.eval.accuracy);
    // One probability per row, in order.
    std::ifstream scores(o.out);
    int64_t lines = 0;
    for (std::string l; std::getline(scores, l);) ++lines;
    EXPECT_EQ(lines, p.rows);
  }
}

TEST_F(ServingJobTest, ExportOptionsAndRefusals) {
  const fs::path job = *dir_ / "options";
  Result r = Deepfm("train --no_eval --data_location=" + Data("elm").string() +
                    " --checkpoint=" + job.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Deepfm("export --checkpoint=" + job.string() + " --out=" + (job / "full").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The same step again is refused, naming the folder.
  r = Deepfm("export --checkpoint=" + job.string() + " --out=" + (job / "full").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("exists"), std::string::npos) << r.output;
  r = Deepfm("export --min_frequency=3 --export_values=bf16 --checkpoint=" + job.string() +
             " --out=" + (job / "small").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::unique_ptr<const deepfm::serving::ExportFile> full, small;
  ASSERT_TRUE(
      deepfm::serving::ExportFile::Open((OnlyVersion(job / "full") / "model.dfm").string(), &full)
          .ok());
  ASSERT_TRUE(
      deepfm::serving::ExportFile::Open((OnlyVersion(job / "small") / "model.dfm").string(), &small)
          .ok());
  uint64_t full_rows = 0, small_rows = 0, dropped = 0;
  for (const auto& t : full->meta().tables()) full_rows += t.rows();
  for (const auto& t : small->meta().tables()) {
    small_rows += t.rows();
    dropped += t.dropped_rows();
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(small_rows + dropped, full_rows);
  // Exactly the rows pushed fewer than 3 times are gone: counted here from
  // the checkpoint itself.
  std::string latest;
  ASSERT_TRUE(deepfm::LatestCheckpoint(job.string(), &latest).ok());
  deepfm::Manifest manifest;
  ASSERT_TRUE(deepfm::ReadAndVerifyManifest(latest, &manifest).ok());
  deepfm::ps::ShardOptions so;
  so.num_slots = manifest.num_slots;
  so.background_sweeps = false;
  ASSERT_TRUE(deepfm::ps::ParseOptimizerType(manifest.optimizer, &so.optimizer.type).ok());
  deepfm::Status st;
  std::unique_ptr<deepfm::ps::Shard> shard = deepfm::ps::Shard::Create(so, &st);
  uint64_t restored = 0;
  ASSERT_TRUE(deepfm::ps::RestoreShard(&shard, latest, &restored).ok());
  // Rows a job with --ev_steps_to_live=1 would read as dead at the
  // checkpoint's step are left out the same way.
  r = Deepfm("export --ev_steps_to_live=1 --checkpoint=" + job.string() +
             " --out=" + (job / "ttl").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::unique_ptr<const deepfm::serving::ExportFile> ttl;
  ASSERT_TRUE(
      deepfm::serving::ExportFile::Open((OnlyVersion(job / "ttl") / "model.dfm").string(), &ttl)
          .ok());
  const uint32_t step = static_cast<uint32_t>(manifest.global_step);
  uint64_t all_dead = 0;
  for (int i = 0; i < small->meta().tables_size(); ++i) {
    const auto& t = small->meta().tables(i);
    uint64_t rare = 0, dead = 0;
    for (const deepfm::ps::EmbeddingTable* table : shard->tables()) {
      if (table->options().name != t.name()) continue;
      table->ForEachRow([&](uint64_t, const float*, const float*, deepfm::ps::RowMeta m) {
        rare += m.frequency < 3 ? 1 : 0;
        dead += static_cast<int32_t>(step - m.last_step) > 1 ? 1 : 0;
      });
    }
    EXPECT_EQ(t.dropped_rows(), rare) << t.name();
    EXPECT_EQ(ttl->meta().tables(i).expired_rows(), dead) << t.name();
    EXPECT_EQ(ttl->meta().tables(i).rows() + dead, full->meta().tables(i).rows()) << t.name();
    all_dead += dead;
  }
  EXPECT_GT(all_dead, 0u);
  EXPECT_EQ(small->meta().value_type(), deepfm::serving::ExportMeta::BF16);
  EXPECT_LT(small->bytes(), full->bytes());
  // Scoring with the smaller export still runs (unseen rows read their initial rows).
  r = Deepfm("predict --model=" + (job / "small").string() +
             " --data_location=" + Data("elm").string() + " --out=" + (job / "s.csv").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // A damaged export is refused by predict, naming the file.
  const fs::path file = OnlyVersion(job / "full") / "model.dfm";
  std::string bytes = Slurp(file);
  bytes[bytes.size() - 3] ^= 1;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  r = Deepfm("predict --model=" + (job / "full").string() +
             " --data_location=" + Data("elm").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("damaged"), std::string::npos) << r.output;
  r = Deepfm("export --checkpoint=" + (job / "nothing").string() +
             " --out=" + (job / "x").string());
  EXPECT_NE(r.exit_code, 0);
}

// `deepfm serve` as a process: health, a Predict call with the token, and a
// clean stop on SIGTERM.
TEST_F(ServingJobTest, ServeAnswersWithTheTokenAndStopsOnSigterm) {
  const fs::path job = *dir_ / "serve";
  Result r = Deepfm("train --export --no_eval --data_location=" + Data("elm").string() +
                    " --checkpoint=" + job.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string token = "serving-job-test-token-abcdefghij";
  std::ofstream(job / "token") << token << "\n";
  const int port = deepfm::testing_util::FreeLoopbackPort();
  const fs::path log = job / "serve.log";
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const pid_t pid = deepfm::testing_util::StartShell(
      std::string(DEEPFM_BIN) + " serve --watch --model=" + (job / "export").string() +
          " --port=" + std::to_string(port) + " --auth_token_file=" + (job / "token").string(),
      fd);
  ::close(fd);
  const auto security = deepfm::rpc::Security::WithToken(token);
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  const deepfm::Status up = deepfm::rpc::WaitForServing(addr, security, std::chrono::seconds(60),
                                                        [&] { return kill(pid, 0) == 0; });
  EXPECT_TRUE(up.ok()) << up.message() << "\n" << Slurp(log);
  if (up.ok()) {
    auto stub = deepfm::serving::Predictor::NewStub(
        grpc::CreateChannel(addr, security.ChannelCredentials()));
    std::ifstream eval(Data("elm") / "eval.csv");
    deepfm::serving::PredictRequest req;
    for (std::string l; req.csv_rows_size() < 3 && std::getline(eval, l);) req.add_csv_rows(l);
    grpc::ClientContext ctx;
    security.Authorize(&ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    deepfm::serving::PredictResponse resp;
    const grpc::Status s = stub->Predict(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.probabilities_size(), 3);
    grpc::ClientContext no_token;
    EXPECT_EQ(stub->Predict(&no_token, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  kill(pid, SIGTERM);
  int status = 0;
  EXPECT_TRUE(deepfm::testing_util::WaitExit(pid, 30, &status)) << Slurp(log);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(log);
}

}  // namespace

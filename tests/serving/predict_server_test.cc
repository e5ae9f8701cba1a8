// The Predict service (serving/predict_server.h) in-process on loopback:
// concurrent clients get exactly what `deepfm predict` writes, bad calls are
// refused without effect, and hot reload swaps under load without a failed
// request while a damaged export is refused and the old model serves on.
#include "serving/predict_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "proto/serving.grpc.pb.h"
#include "rpc/health.h"
#include "serving/batch_predict.h"
#include "tests/serving/export_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/near_miss.h"
#include "tools/datagen.h"

namespace deepfm::serving {
namespace {

namespace fs = std::filesystem;
using testing::Lines;
using testing::MakeExport;

constexpr char kToken[] = "predict-server-test-token-0123456789";

class PredictServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("predict_server_test_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    ElmDataGenOptions o;
    o.train_rows = 50;
    o.eval_rows = 400;
    o.out_dir = (*dir_ / "data").string();
    DataGenReport r;
    ASSERT_TRUE(GenerateElmData(o, &r).ok());
    eval_ = new std::string(r.eval_path);
    ASSERT_TRUE(FeatureSpec::Load("elm", &spec_).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete eval_;
    spec_.reset();
  }

  void SetUp() override {
    root_ = *dir_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    ASSERT_FALSE(MakeExport(spec_, *eval_, root_, 10, 1, /*half_rows=*/true).empty());
  }

  // What `deepfm predict` writes for the eval file with the export `model`.
  std::vector<float> Predicted(const std::string& model) {
    PredictOptions o;
    o.model = model;
    o.files = {*eval_};
    o.out = (root_ / "scores.csv").string();
    o.threads = 2;
    PredictResult r;
    const Status s = BatchPredict(o, &r);
    EXPECT_TRUE(s.ok()) << s.message();
    std::vector<float> out;
    for (const std::string& l : Lines(o.out)) out.push_back(std::strtof(l.c_str(), nullptr));
    fs::remove(o.out);
    return out;
  }

  void Start(ServeOptions o) {
    o.model = o.model.empty() ? root_.string() : o.model;
    if (!o.watch && o.model == root_.string()) o.model = (root_ / "10").string();
    const Status s = PredictServer::Start(o, &server_);
    ASSERT_TRUE(s.ok()) << s.message();
    const std::shared_ptr<grpc::ChannelCredentials> creds = o.security.ChannelCredentials();
    stub_ = Predictor::NewStub(grpc::CreateChannel(server_->address(), creds));
    security_ = o.security;
  }

  grpc::Status Call(const PredictRequest& req, PredictResponse* resp,
                    const std::string* token = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (token) {
      ctx.AddMetadata("authorization", "Bearer " + *token);
    } else {
      security_.Authorize(&ctx);
    }
    return stub_->Predict(&ctx, req, resp);
  }

  static fs::path* dir_;
  static std::string* eval_;
  static FeatureSpecPtr spec_;
  fs::path root_;
  rpc::Security security_;
  std::unique_ptr<PredictServer> server_;
  std::unique_ptr<Predictor::Stub> stub_;
};

fs::path* PredictServerTest::dir_ = nullptr;
std::string* PredictServerTest::eval_ = nullptr;
FeatureSpecPtr PredictServerTest::spec_;

// Clients that each send their own stripe of the eval rows, in requests of
// 1 to 37 rows, all at once: the service batches them into shared passes
// and every row's probability is what batch predict wrote for it, bit for
// bit (the forward is row by row independent of what it is batched with).
TEST_F(PredictServerTest, ConcurrentClientsGetExactlyWhatPredictWrites) {
  const std::vector<float> want = Predicted((root_ / "10").string());
  const std::vector<std::string> rows = Lines(*eval_);
  ASSERT_EQ(want.size(), rows.size());
  ServeOptions o;
  o.batch_wait_us = 3000;
  o.max_batch_rows = 128;
  o.security = rpc::Security::WithToken(kToken);
  Start(o);
  const int kClients = 6;
  std::vector<float> got(rows.size(), -1.0f);
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const int sizes[] = {1, 5, 16, 37, 2};
      std::vector<int> mine;
      for (size_t i = c; i < rows.size(); i += kClients) mine.push_back(static_cast<int>(i));
      size_t at = 0;
      for (int k = 0; at < mine.size(); ++k) {
        PredictRequest req;
        const size_t n = std::min<size_t>(sizes[(k + c) % 5], mine.size() - at);
        for (size_t j = 0; j < n; ++j) {
          if ((k + c) % 2 == 0) {
            req.add_csv_rows(rows[mine[at + j]]);
          } else {
            // A scoring client's row: the label cell left empty.
            const std::string& r = rows[mine[at + j]];
            req.add_csv_rows(r.substr(r.find(',')));
          }
        }
        PredictResponse resp;
        const grpc::Status s = Call(req, &resp);
        if (!s.ok() || resp.probabilities_size() != static_cast<int>(n) ||
            resp.model_version() != 10) {
          failures.fetch_add(1);
          return;
        }
        for (size_t j = 0; j < n; ++j) got[mine[at + j]] = resp.probabilities(j);
        at += n;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(got[i], want[i]) << "row " << i;
  const ServeStats st = server_->stats();
  EXPECT_EQ(st.rows, static_cast<int64_t>(rows.size()));
  EXPECT_LT(st.passes, st.requests) << "no two requests were batched into one pass";
  EXPECT_GT(st.largest_pass, 37);
  EXPECT_LE(st.largest_pass, 128) << "a pass beyond max_batch_rows";
}

// Requests that would make a pass larger than max_batch_rows wait for the
// next one; a request larger than it is scored alone.
TEST_F(PredictServerTest, PassesNeverExceedMaxBatchRows) {
  ServeOptions o;
  o.max_batch_rows = 8;
  o.batch_wait_us = 20000;
  Start(o);
  const std::vector<std::string> rows = Lines(*eval_);
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int k = 0; k < 3; ++k) {
        PredictRequest req;
        for (int j = 0; j < 5; ++j) req.add_csv_rows(rows[c * 20 + k * 5 + j]);
        PredictResponse resp;
        if (!Call(req, &resp).ok() || resp.probabilities_size() != 5) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server_->stats().largest_pass, 5);
  EXPECT_EQ(server_->stats().passes, 12);
  PredictRequest big;
  for (int j = 0; j < 20; ++j) big.add_csv_rows(rows[j]);
  PredictResponse resp;
  ASSERT_TRUE(Call(big, &resp).ok());
  EXPECT_EQ(resp.probabilities_size(), 20);
  EXPECT_EQ(server_->stats().largest_pass, 20);
}

TEST_F(PredictServerTest, TypedRowsScoreLikeTheirCsvRows) {
  Start(ServeOptions());
  const std::vector<std::string> rows = Lines(*eval_);
  PredictRequest csv, typed;
  for (int i = 0; i < 8; ++i) {
    csv.add_csv_rows(rows[i]);
    TypedRow* t = typed.add_rows();
    // Split the line by the spec's columns into named values.
    std::vector<std::string> cells;
    std::stringstream ss(rows[i]);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (rows[i].back() == ',') cells.push_back("");
    ASSERT_EQ(cells.size(), spec_->columns().size());
    for (size_t c = 0; c < cells.size(); ++c) {
      const FeatureSpec::ColumnInfo& col = spec_->columns()[c];
      if (col.kind == FeatureSpec::Kind::kLabel || cells[c].empty()) continue;
      if (col.kind == FeatureSpec::Kind::kList || col.kind == FeatureSpec::Kind::kNumericList) {
        std::stringstream ls(cells[c]);
        std::string tok;
        Value v;
        while (std::getline(ls, tok, col.list_separator)) v.mutable_list()->add_values(tok);
        (*t->mutable_features())[col.name] = v;
      } else {
        (*t->mutable_features())[col.name].set_text(cells[c]);
      }
    }
  }
  PredictResponse a, b;
  ASSERT_TRUE(Call(csv, &a).ok());
  const grpc::Status s = Call(typed, &b);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(a.probabilities_size(), 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(a.probabilities(i), b.probabilities(i)) << i;
}

// A wrong token is refused whatever it differs in: one byte at the start,
// in the middle or at the end, a prefix, one byte more. A bad request is
// INVALID_ARGUMENT naming the row and field and scores nothing.
TEST_F(PredictServerTest, WrongTokensAndBadRequestsAreRefusedWithoutEffect) {
  ServeOptions o;
  o.security = rpc::Security::WithToken(kToken);
  Start(o);
  ASSERT_TRUE(rpc::WaitForServing(server_->address(), o.security, std::chrono::seconds(10)).ok());
  const std::vector<std::string> rows = Lines(*eval_);
  PredictRequest good;
  good.add_csv_rows(rows[0]);
  PredictResponse resp;
  ASSERT_TRUE(Call(good, &resp).ok());
  const std::vector<std::string> wrong = deepfm::testing_util::NearMisses(kToken);
  for (const std::string& t : wrong) {
    PredictResponse r;
    EXPECT_EQ(Call(good, &r, &t).error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << "token '" << t << "'";
    EXPECT_EQ(r.probabilities_size(), 0);
  }
  {
    // No token at all.
    grpc::ClientContext ctx;
    PredictResponse r;
    EXPECT_EQ(stub_->Predict(&ctx, good, &r).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    grpc::ClientContext info_ctx;
    ModelInfoResponse info;
    EXPECT_EQ(stub_->ModelInfo(&info_ctx, ModelInfoRequest(), &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  PredictRequest bad;
  bad.add_csv_rows(rows[1]);
  bad.add_csv_rows(rows[2].substr(0, rows[2].rfind(',')));
  const grpc::Status s = Call(bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("csv_rows[1]"), std::string::npos) << s.error_message();
  PredictRequest unknown;
  (*unknown.add_rows()->mutable_features())["nope"].set_text("1");
  const grpc::Status u = Call(unknown, &resp);
  EXPECT_EQ(u.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(u.error_message().find("rows[0].features['nope']"), std::string::npos)
      << u.error_message();
  const ServeStats st = server_->stats();
  EXPECT_EQ(st.rows, 1);
  EXPECT_EQ(st.requests, 1);
  EXPECT_EQ(st.rejected, static_cast<int64_t>(wrong.size()) + 2 + 2);
}

TEST_F(PredictServerTest, TheMetricsPageCountsRowsAndRequiresTheToken) {
  ServeOptions o;
  o.security = rpc::Security::WithToken(kToken);
  o.metrics_port = 0;
  Start(o);
  const std::vector<std::string> rows = Lines(*eval_);
  PredictRequest req;
  for (int i = 0; i < 5; ++i) req.add_csv_rows(rows[i]);
  PredictResponse resp;
  ASSERT_TRUE(Call(req, &resp).ok());
  ASSERT_TRUE(Call(req, &resp).ok());
  EXPECT_EQ(deepfm::testing_util::HttpGet(server_->metrics_port(), "/metrics").status, 401);
  std::string near = kToken;
  near.back() = '!';
  EXPECT_EQ(deepfm::testing_util::HttpGet(server_->metrics_port(), "/metrics", near).status, 401);
  const auto page = deepfm::testing_util::HttpGet(server_->metrics_port(), "/metrics", kToken);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(deepfm::testing_util::PromValue(page.body, "deepfm_serve_rows_total"), 10);
  EXPECT_EQ(deepfm::testing_util::PromValue(page.body, "deepfm_serve_request_seconds_count"), 2);
  EXPECT_EQ(deepfm::testing_util::PromValue(page.body, "deepfm_serve_batch_rows_sum"), 10);
  EXPECT_EQ(deepfm::testing_util::PromValue(page.body, "deepfm_serve_model_version"), 10);
}

// Writes a new version as deepfm export does: whole, then renamed in.
void Publish(const FeatureSpecPtr& spec, const std::string& data, const fs::path& root,
             int64_t version, uint64_t seed, bool damage = false) {
  const fs::path staging = root.parent_path() / (root.filename().string() + "-staging");
  fs::remove_all(staging);
  ASSERT_FALSE(MakeExport(spec, data, staging, version, seed).empty());
  if (damage) {
    const fs::path file = staging / std::to_string(version) / kExportFileName;
    std::string bytes = testing::ReadAll(file.string());
    bytes[bytes.size() / 2] ^= 0x10;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  }
  fs::rename(staging / std::to_string(version), root / std::to_string(version));
  fs::remove_all(staging);
}

// Clients keep calling while a newer export appears and the watcher swaps
// to it: no call fails, each answer is wholly the old model's or the new
// one's (bit for bit), and the new one is serving at the end.
TEST_F(PredictServerTest, SwapUnderLoadFailsNoRequest) {
  const std::vector<std::string> rows = Lines(*eval_);
  std::map<int64_t, std::vector<float>> want;
  want[10] = Predicted((root_ / "10").string());
  ServeOptions o;
  o.watch = true;
  o.watch_interval_ms = 20;
  o.batch_wait_us = 500;
  Start(o);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, calls{0};
  std::mutex seen_mu;
  std::map<int64_t, std::vector<std::pair<int, float>>> seen;  // version -> (row, prob)
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      for (int k = 0; !stop.load() && std::chrono::steady_clock::now() < give_up; ++k) {
        const int first = (c * 97 + k * 13) % static_cast<int>(rows.size() - 8);
        PredictRequest req;
        for (int j = 0; j < 1 + k % 8; ++j) req.add_csv_rows(rows[first + j]);
        PredictResponse resp;
        const grpc::Status s = Call(req, &resp);
        calls.fetch_add(1);
        if (!s.ok() || resp.probabilities_size() != req.csv_rows_size()) {
          failures.fetch_add(1);
          continue;
        }
        std::lock_guard<std::mutex> lock(seen_mu);
        for (int j = 0; j < resp.probabilities_size(); ++j) {
          seen[resp.model_version()].emplace_back(first + j, resp.probabilities(j));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Publish(spec_, *eval_, root_, 20, 2);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server_->stats().model_version != 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0) << "of " << calls.load() << " calls";
  ASSERT_EQ(server_->stats().model_version, 20);
  EXPECT_EQ(server_->stats().loads, 2);
  want[20] = Predicted((root_ / "20").string());
  ASSERT_EQ(seen.size(), 2u) << "the load did not span the swap";
  for (const auto& [version, probs] : seen) {
    ASSERT_TRUE(want.count(version)) << "an answer from version " << version;
    for (const auto& [row, p] : probs)
      ASSERT_EQ(p, want[version][row]) << "version " << version << " row " << row;
  }
  EXPECT_NE(want[10][0], want[20][0]);
}

// A newer export that fails verification is refused once (not retried
// while unchanged), the old model keeps answering, and a good export after
// it is taken.
TEST_F(PredictServerTest, ADamagedExportIsRefusedAndTheOldModelServesOn) {
  const std::vector<std::string> rows = Lines(*eval_);
  ServeOptions o;
  o.watch = true;
  o.watch_interval_ms = 3600000;  // the test looks itself
  Start(o);
  Publish(spec_, *eval_, root_, 30, 3, /*damage=*/true);
  EXPECT_FALSE(server_->CheckForNewModel());
  EXPECT_FALSE(server_->CheckForNewModel());
  ServeStats st = server_->stats();
  EXPECT_EQ(st.refused, 1);
  EXPECT_EQ(st.model_version, 10);
  PredictRequest req;
  req.add_csv_rows(rows[0]);
  PredictResponse resp;
  ASSERT_TRUE(Call(req, &resp).ok());
  EXPECT_EQ(resp.model_version(), 10);
  grpc::ClientContext ctx;
  security_.Authorize(&ctx);
  ModelInfoResponse info;
  ASSERT_TRUE(stub_->ModelInfo(&ctx, ModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.refused(), 1);
  EXPECT_EQ(info.model_version(), 10);
  EXPECT_EQ(info.columns_size(), 39);
  Publish(spec_, *eval_, root_, 40, 4);
  EXPECT_TRUE(server_->CheckForNewModel());
  ASSERT_TRUE(Call(req, &resp).ok());
  EXPECT_EQ(resp.model_version(), 40);
}

// With the job's certificate and CA the service speaks mutual TLS: a
// client of the same CA is answered, a plaintext one gets nothing.
TEST_F(PredictServerTest, ServesMutualTlsWithTheJobsCertificates) {
  const fs::path certs = root_ / "certs";
  const std::string cmd = std::string(DEEPFM_MAKE_CERTS) + " " + certs.string() + " localhost > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed: is openssl installed?";
  rpc::SecurityOptions so;
  so.auth_token_file = (certs / "token").string();
  so.tls_cert = (certs / "tls.crt").string();
  so.tls_key = (certs / "tls.key").string();
  so.tls_ca = (certs / "ca.pem").string();
  rpc::Security security;
  ASSERT_TRUE(rpc::Security::Load(so, &security).ok());
  ServeOptions o;
  o.security = security;
  Start(o);
  const std::string address = "localhost:" + std::to_string(server_->port());
  stub_ = Predictor::NewStub(grpc::CreateChannel(address, security.ChannelCredentials()));
  PredictRequest req;
  req.add_csv_rows(Lines(*eval_)[0]);
  PredictResponse resp;
  const grpc::Status s = Call(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.probabilities_size(), 1);
  auto plain = Predictor::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  security.Authorize(&ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  PredictResponse none;
  EXPECT_FALSE(plain->Predict(&ctx, req, &none).ok());
  EXPECT_EQ(none.probabilities_size(), 0);
  EXPECT_EQ(server_->stats().requests, 1);
}

TEST_F(PredictServerTest, RefusesToStartOnWhatItCannotServe) {
  std::unique_ptr<PredictServer> s;
  ServeOptions o;
  o.model = (root_ / "missing").string();
  EXPECT_FALSE(PredictServer::Start(o, &s).ok());
  o.model = (root_ / "10").string();
  o.watch = true;  // a version folder cannot be watched
  EXPECT_EQ(PredictServer::Start(o, &s).code(), Code::kInvalidArgument);
  o.watch = false;
  o.bind = "0.0.0.0";  // beyond loopback without a token
  EXPECT_EQ(PredictServer::Start(o, &s).code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace deepfm::serving

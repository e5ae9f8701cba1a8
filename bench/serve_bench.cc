// The Predict service's latency and throughput (issue 25), in one process
// on loopback: the service as `deepfm serve` runs it (token, batching,
// watching its export root) and load generators of its own.
//
//   closed loop  C clients, each sending its next request when the last is
//                answered, for --seconds: the peak rows/s at a request size;
//   open loop    requests sent at fixed times at 50 % and 90 % of that
//                peak, whether or not earlier ones are answered (latency
//                from the intended send time, so a stall is not hidden);
//                offered/s is the rate asked for, req/s what was answered;
//   swap         the open loop at 50 % while a new export version appears
//                and the watcher swaps to it.
// For a physical reference it first times the forward pass in-process (no
// RPC, no batching wait): what a row costs the model itself.
//
//   build/bench/serve_bench --model=JOB/export --data=data/eval.csv
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "common/timing.h"
#include "launcher/machine_info.h"
#include "proto/serving.grpc.pb.h"
#include "serving/predict_server.h"
#include "serving/request_rows.h"

DEFINE_string(model, "", "an export root, version folder or model.dfm");
DEFINE_string(data, "", "csv rows to send (the model's data layout)");
DEFINE_string(sizes, "1,16,256", "rows per request");
DEFINE_double(seconds, 3, "seconds per measurement");
DEFINE_int32(clients, 8, "closed loop: concurrent clients");
DEFINE_int32(threads, 1, "the service's scoring threads");
DEFINE_int64(batch_wait_us, 200, "the service's --batch_wait_us");
DEFINE_int32(max_batch_rows, 1024, "the service's --max_batch_rows");

namespace {

namespace fs = std::filesystem;
using namespace deepfm;
using namespace deepfm::serving;
using Clock = std::chrono::steady_clock;

constexpr char kToken[] = "serve-bench-token-0123456789abcdef";

std::vector<std::string> ReadRows(const std::string& path) {
  std::vector<std::string> rows;
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return rows;
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0 && rows.size() < 200000) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) --n;
    if (n > 0) rows.emplace_back(line, n);
  }
  free(line);
  fclose(f);
  return rows;
}

struct Point {
  std::string mode, load;
  int size = 0;
  double seconds = 0;
  int64_t requests = 0, failed = 0;
  double offered = 0;  // open loop: requests per second asked for
  std::vector<double> latency_us;
  double rows_per_s() const { return seconds > 0 ? requests * size / seconds : 0; }
  double requests_per_s() const { return seconds > 0 ? requests / seconds : 0; }
  double Quantile(double q) {
    if (latency_us.empty()) return 0;
    std::sort(latency_us.begin(), latency_us.end());
    return latency_us[std::min(latency_us.size() - 1, static_cast<size_t>(q * latency_us.size()))];
  }
};

PredictRequest MakeRequest(const std::vector<std::string>& rows, int size, size_t* at) {
  PredictRequest req;
  for (int i = 0; i < size; ++i) {
    req.add_csv_rows(rows[*at]);
    *at = (*at + 1) % rows.size();
  }
  return req;
}

class Bench {
 public:
  Bench(std::string address, const std::vector<std::string>& rows)
      : address_(std::move(address)), rows_(rows), security_(rpc::Security::WithToken(kToken)) {}

  std::unique_ptr<Predictor::Stub> Stub() const {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection per client
    return Predictor::NewStub(
        grpc::CreateCustomChannel(address_, security_.ChannelCredentials(), args));
  }

  Point Closed(int size, double seconds) {
    Point p;
    p.mode = "closed";
    p.load = std::to_string(FLAGS_clients) + " clients";
    p.size = size;
    std::mutex mu;
    std::vector<std::thread> clients;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    Stopwatch wall;
    for (int c = 0; c < FLAGS_clients; ++c) {
      clients.emplace_back([&, c] {
        auto stub = Stub();
        size_t at = c * 7919 % rows_.size();
        std::vector<double> lat;
        int64_t ok = 0, failed = 0;
        while (Clock::now() < end) {
          const PredictRequest req = MakeRequest(rows_, size, &at);
          PredictResponse resp;
          grpc::ClientContext ctx;
          security_.Authorize(&ctx);
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
          Stopwatch t;
          const grpc::Status s = stub->Predict(&ctx, req, &resp);
          if (s.ok()) {
            lat.push_back(t.Micros());
            ++ok;
          } else {
            ++failed;
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        p.latency_us.insert(p.latency_us.end(), lat.begin(), lat.end());
        p.requests += ok;
        p.failed += failed;
      });
    }
    for (auto& t : clients) t.join();
    p.seconds = wall.Seconds();
    return p;
  }

  // Requests at fixed intervals (rate per second) on async calls; latency
  // from each request's intended send time. `during` runs on the side
  // (the swap) once a third of the time has passed.
  Point Open(int size, double rate, double seconds, const std::string& load,
             const std::function<void()>& during = nullptr) {
    Point p;
    p.mode = during ? "swap" : "open";
    p.load = load;
    p.size = size;
    p.offered = rate;
    auto stub = Stub();
    grpc::CompletionQueue cq;
    struct Call {
      grpc::ClientContext ctx;
      PredictResponse resp;
      grpc::Status status;
      Clock::time_point intended;
      std::unique_ptr<grpc::ClientAsyncResponseReader<PredictResponse>> reader;
    };
    const int64_t total = std::max<int64_t>(1, static_cast<int64_t>(rate * seconds));
    std::atomic<int64_t> sent{0};
    std::thread drain([&] {
      void* tag;
      bool ok;
      for (int64_t done = 0; done < total && cq.Next(&tag, &ok);) {
        std::unique_ptr<Call> call(static_cast<Call*>(tag));
        const double us =
            std::chrono::duration<double, std::micro>(Clock::now() - call->intended).count();
        if (ok && call->status.ok()) {
          p.latency_us.push_back(us);
          ++p.requests;
        } else {
          ++p.failed;
        }
        ++done;
      }
    });
    std::thread side;
    size_t at = 0;
    const auto start = Clock::now();
    const auto interval = std::chrono::duration<double>(1.0 / rate);
    for (int64_t i = 0; i < total; ++i) {
      const auto when = start + std::chrono::duration_cast<Clock::duration>(interval * i);
      std::this_thread::sleep_until(when);
      if (during && !side.joinable() && i >= total / 3) side = std::thread(during);
      auto call = std::make_unique<Call>();
      call->intended = when;
      security_.Authorize(&call->ctx);
      call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      const PredictRequest req = MakeRequest(rows_, size, &at);
      call->reader = stub->AsyncPredict(&call->ctx, req, &cq);
      Call* raw = call.release();
      raw->reader->Finish(&raw->resp, &raw->status, raw);
      sent.fetch_add(1);
    }
    drain.join();
    if (side.joinable()) side.join();
    cq.Shutdown();
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);
    p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return p;
  }

 private:
  std::string address_;
  const std::vector<std::string>& rows_;
  rpc::Security security_;
};

void Print(Point p) {
  const std::string offered =
      p.offered > 0 ? std::to_string(static_cast<long long>(p.offered)) : "-";
  printf("%-7s %6d  %-12s %9s %9.0f %10.0f %9.0f %9.0f %9.0f %7lld\n", p.mode.c_str(), p.size,
         p.load.c_str(), offered.c_str(), p.requests_per_s(), p.rows_per_s(), p.Quantile(0.5),
         p.Quantile(0.99), p.Quantile(0.999), static_cast<long long>(p.failed));
  fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_model.empty() || FLAGS_data.empty()) {
    fprintf(stderr, "usage: serve_bench --model=EXPORT --data=ROWS.csv\n");
    return 2;
  }
  const std::vector<std::string> rows = ReadRows(FLAGS_data);
  if (rows.empty()) {
    fprintf(stderr, "serve_bench: no rows in %s\n", FLAGS_data.c_str());
    return 2;
  }
  std::shared_ptr<const ServingModel> model;
  Status s = ServingModel::Load(FLAGS_model, ModelOptions(), &model);
  if (!s.ok()) {
    fprintf(stderr, "serve_bench: %s\n", s.message().c_str());
    return 1;
  }
  std::vector<int> sizes;
  for (size_t a = 0; a < FLAGS_sizes.size();) {
    size_t b = FLAGS_sizes.find(',', a);
    if (b == std::string::npos) b = FLAGS_sizes.size();
    sizes.push_back(std::stoi(FLAGS_sizes.substr(a, b - a)));
    a = b + 1;
  }
  const auto machine = launcher::DescribeMachine();
  printf("serve_bench: %s, %s cores, DNN path %s; model %s (version %lld); %zu rows from %s\n",
         machine.at("cpu").c_str(), machine.at("cores").c_str(), machine.at("isa").c_str(),
         model->path().c_str(), static_cast<long long>(model->version()), rows.size(),
         FLAGS_data.c_str());

  // The forward in-process: parse, then score, per row.
  printf("\nin-process, one thread: us per row\n%-8s %10s %10s\n", "rows", "parse", "forward");
  Scorer scorer(model);
  for (int size : {1, 16, 256, 4096}) {
    size_t at = 0;
    Batch batch;
    std::vector<float> probs(size);
    double parse_us = 0, score_us = 0;
    int64_t scored = 0;
    Stopwatch total;
    while (total.Seconds() < std::min(2.0, FLAGS_seconds) || scored < 4096) {
      const PredictRequest req = MakeRequest(rows, size, &at);
      Stopwatch t;
      s = ParseRequestRows(*model->spec(), req, &batch);
      if (!s.ok()) {
        fprintf(stderr, "serve_bench: %s\n", s.message().c_str());
        return 1;
      }
      parse_us += t.Micros();
      Stopwatch f;
      scorer.Score(batch, probs.data());
      score_us += f.Micros();
      scored += size;
    }
    printf("%-8d %10.2f %10.2f\n", size, parse_us / scored, score_us / scored);
  }

  // The service, as deepfm serve runs it, on a root of its own so the swap
  // can add a version.
  const fs::path root = fs::temp_directory_path() / ("serve_bench_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "1");
  fs::copy_file(model->path(), root / "1" / kExportFileName);
  ServeOptions o;
  o.model = root.string();
  o.watch = true;
  o.watch_interval_ms = 50;
  o.security = rpc::Security::WithToken(kToken);
  o.batch_wait_us = FLAGS_batch_wait_us;
  o.max_batch_rows = FLAGS_max_batch_rows;
  o.scoring_threads = FLAGS_threads;
  o.handler_threads = std::max(4, FLAGS_clients);
  std::unique_ptr<PredictServer> server;
  s = PredictServer::Start(o, &server);
  if (!s.ok()) {
    fprintf(stderr, "serve_bench: %s\n", s.message().c_str());
    return 1;
  }
  printf(
      "\nservice on %s: %d scoring thread(s), batch_wait_us %lld, max_batch_rows %d; %.1f s a "
      "point\n",
      server->address().c_str(), FLAGS_threads, static_cast<long long>(FLAGS_batch_wait_us),
      FLAGS_max_batch_rows, FLAGS_seconds);
  printf("%-7s %6s  %-12s %9s %9s %10s %9s %9s %9s %7s\n", "mode", "rows", "load", "offered/s",
         "req/s", "rows/s", "p50 us", "p99 us", "p999 us", "failed");
  Bench bench(server->address(), rows);
  int next_version = 2;
  for (int size : sizes) {
    Point peak = bench.Closed(size, FLAGS_seconds);
    Print(peak);
    const double rate = peak.requests_per_s();
    if (rate <= 0) continue;
    Print(bench.Open(size, 0.5 * rate, FLAGS_seconds, "50% peak"));
    Print(bench.Open(size, 0.9 * rate, FLAGS_seconds, "90% peak"));
    const int64_t loads = server->stats().loads;
    const int version = next_version++;
    Point swap = bench.Open(size, 0.5 * rate, FLAGS_seconds, "50%+swap", [&] {
      // A new version appears whole, as deepfm export writes it.
      const fs::path tmp = root / ("." + std::to_string(version) + ".tmp");
      fs::create_directories(tmp);
      fs::copy_file(model->path(), tmp / kExportFileName);
      fs::rename(tmp, root / std::to_string(version));
    });
    Print(swap);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (server->stats().loads == loads && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (server->stats().loads == loads)
      printf("        (the swap did not happen within the run)\n");
  }
  const ServeStats st = server->stats();
  printf(
      "\n%lld requests, %lld rows in %lld forward passes (%.1f rows a pass), %lld loads, %lld "
      "refused\n",
      static_cast<long long>(st.requests), static_cast<long long>(st.rows),
      static_cast<long long>(st.passes), st.passes ? static_cast<double>(st.rows) / st.passes : 0.0,
      static_cast<long long>(st.loads), static_cast<long long>(st.refused));
  server->Shutdown();
  fs::remove_all(root);
  return 0;
}

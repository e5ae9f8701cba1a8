// deepfm: the one program of the project.
//   deepfm train     a whole job (local, or the tasks of a cluster spec)
//   deepfm ps        one parameter-server task of a cluster spec
//   deepfm worker    one trainer task (chief or worker) of a cluster spec
//   deepfm task      whichever of the two the cluster spec says this task is
//   deepfm status    every trainer's heartbeat, as the chief shard sees it
//   deepfm gen-data  Criteo-schema data from a planted model
//   deepfm export    a serving model from a checkpoint
//   deepfm predict   score data files with an export
//   deepfm serve     the online Predict service over an export
// main only parses flags and hands them to the libraries.
#include <glog/logging.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/cluster_spec.h"
#include "common/malloc_tuning.h"
#include "launcher/job_flags.h"
#include "launcher/train_job.h"
#include "obs/job_report.h"
#include "ps/ps_task.h"
#include "rpc/job_status.h"
#include "serving/batch_predict.h"
#include "serving/exporter.h"
#include "serving/predict_server.h"
#include "tools/datagen.h"
#include "worker/ps_client.h"
#include "worker/worker_task.h"

namespace {

using deepfm::Status;
using namespace deepfm::launcher;

std::string SelfPath(const char* argv0) {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) return std::string(buf, n);
  return argv0;
}

std::string TfConfig() {
  const char* v = std::getenv("TF_CONFIG");
  return v ? v : "";
}

int Error(const std::string& command, const Status& s, int code = 1) {
  fprintf(stderr, "deepfm %s: %s\n", command.c_str(), s.message().c_str());
  return code;
}

int GenData(const FlagSet& f) {
  deepfm::DataGenOptions o;
  o.train_rows = f.GetInt("rows");
  o.eval_rows = f.GetInt("eval_rows") >= 0 ? f.GetInt("eval_rows") : o.train_rows / 5;
  o.out_dir = f.Get("out").empty() ? "./data" : f.Get("out");
  o.seed = f.GetInt("seed");
  o.format = f.Get("format") == "tsv" ? deepfm::DataGenOptions::kTsv : deepfm::DataGenOptions::kCsv;
  deepfm::DataGenReport r;
  const std::string schema = f.Get("feature_spec") == "auto" ? "criteo" : f.Get("feature_spec");
  Status s = deepfm::GeneratePresetData(schema, o, &r);
  if (!s.ok()) return Error("gen-data", s);
  printf("wrote %s (%lld rows, ctr %.4f) and %s (%lld rows, ctr %.4f) in %.1f s; %s schema, "
         "%.0f bytes/row\n",
         r.train_path.c_str(), static_cast<long long>(r.train_rows), r.train_ctr,
         r.eval_path.c_str(), static_cast<long long>(r.eval_rows), r.eval_ctr, r.seconds,
         schema.c_str(), r.bytes_per_row);
  if (r.mean_list_length > 0) printf("history lists: %.1f tokens on average\n", r.mean_list_length);
  printf("oracle eval AUC %.4f, oracle logloss %.4f (the planted model's own scores)\n",
         r.oracle_auc, r.oracle_logloss);
  return 0;
}

// Runs one task of a cluster spec: `command` is kPs, kWorker, or 0 (follow the spec).
int RunTask(const FlagSet& f, unsigned command, const std::string& name) {
  deepfm::ClusterSpec spec;
  std::string origin;
  Status s = ResolveTaskSpec(f, TfConfig(), command, &spec, &origin);
  if (!s.ok()) return Error(name, s, 2);
  const Command role = spec.task_type == "ps" ? kPs : kWorker;
  // Before gRPC starts its threads, so that they inherit the mask: a shard
  // stops in order on SIGTERM.
  if (role == kPs) deepfm::ps::BlockStopSignals();
  // Before any thread allocates (common/malloc_tuning.h says why).
  if (role == kPs && f.GetInt("ps_memory_budget_mb") > 0) deepfm::LimitMallocArenas();
  // gRPC's library shutdown, run when its last user (the server, a
  // channel) goes away, can wait ~10 s for an executor thread polling a
  // timer (seen on shards after TLS connections), holding up the job's
  // end. A task holds gRPC for its whole life and, its work done and its
  // files closed, leaves without that shutdown (main's std::_Exit).
  grpc_init();
  s = ValidateFlags(f, role);
  if (!s.ok()) return Error(name, s, 2);
  if (f.GetBool("dry_run")) {
    // Files the flags name (token, certificates, data) are the task's
    // host's: a deploy check need not have them.
    printf("%s\n", deepfm::ClusterJson(spec).c_str());
    return 0;
  }
  deepfm::rpc::Security security;
  s = LoadSecurity(f, &security);
  if (!s.ok()) return Error(name, s, 2);
  if (role == kPs) {
    deepfm::ps::PsTaskOptions o;
    s = MakePsTask(f, spec, security, &o);
    if (!s.ok()) return Error(name, s, 2);
    return deepfm::ps::RunPsTask(o);
  }
  deepfm::WorkerTaskOptions o;
  s = MakeWorkerTask(f, spec, security, &o);
  if (!s.ok()) return Error(name, s, 2);
  return deepfm::RunWorkerTask(o);
}

// Prints every trainer's phase and heartbeat age from the chief shard.
int JobStatus(const FlagSet& f) {
  deepfm::ClusterSpec spec;
  std::string origin;
  deepfm::ClusterSources src;
  src.spec_file = f.Get("cluster_spec");
  src.tf_config = TfConfig();
  std::string chief_shard;
  if (!f.Get("ps_hosts").empty()) {
    chief_shard = f.Get("ps_hosts").substr(0, f.Get("ps_hosts").find(','));
  } else {
    Status s = deepfm::ResolveClusterSpec(src, /*need_task=*/false, &spec, &origin);
    if (!s.ok()) return Error("status", s, 2);
    chief_shard = spec.ps[0];
  }
  deepfm::rpc::Security security;
  Status s = LoadSecurity(f, &security);
  if (!s.ok()) return Error("status", s, 2);
  deepfm::PsClientOptions co;
  co.hosts = {chief_shard};
  co.security = security;
  co.connect_timeout_ms = 10000;
  co.rpc_deadline_ms = static_cast<int>(f.GetInt("rpc_deadline_ms"));
  co.max_retries = 0;
  std::unique_ptr<deepfm::PsClient> client;
  s = deepfm::PsClient::Connect(co, &client);
  deepfm::ps::JobStatusResponse status;
  if (s.ok()) s = client->JobStatus(&status);
  if (!s.ok()) return Error("status", s);
  printf("global step %lld, %u trainer(s)\n", static_cast<long long>(status.global_step()),
         status.num_workers());
  for (const auto& w : status.workers()) {
    printf("  trainer %u: %-10s local step %-8lld heartbeat %.1f s ago, progress %.1f s ago%s\n",
           w.task_index(), deepfm::ps::WorkerPhase_Name(w.phase()).c_str(),
           static_cast<long long>(w.local_step()), w.seconds_since_heartbeat(),
           w.seconds_since_progress(), w.done() ? ", done" : "");
  }
  return 0;
}

// Writes report.html of the job folders given.
int Report(const FlagSet& f, const std::vector<std::string>& folders) {
  if (folders.empty()) {
    fprintf(stderr, "deepfm report: name one or more job folders (deepfm report JOB_DIR...)\n");
    return 2;
  }
  std::string out = f.Get("report_file");
  if (out.empty()) {
    out = folders.size() == 1 ? (std::filesystem::path(folders[0]) / "report.html").string()
                              : "report.html";
  }
  const Status s = deepfm::obs::WriteReport(folders, out);
  if (!s.ok()) return Error("report", s);
  printf("deepfm: report in %s\n", out.c_str());
  return 0;
}

int Export(const FlagSet& f) {
  deepfm::serving::ExportSummary summary;
  const Status s = deepfm::serving::ExportCheckpoint(ExportOptionsFromFlags(f), &summary);
  if (!s.ok()) return Error("export", s);
  fputs(deepfm::serving::DescribeExport(summary).c_str(), stdout);
  return 0;
}

int Predict(const FlagSet& f) {
  deepfm::serving::PredictOptions o;
  Status s = MakePredictOptions(f, &o);
  if (!s.ok()) return Error("predict", s, 2);
  deepfm::serving::PredictResult r;
  s = deepfm::serving::BatchPredict(o, &r);
  if (!s.ok()) return Error("predict", s);
  printf("deepfm predict: scored %lld rows of %s with %s (version %lld) in %.2f s: %.0f rows/s on %d "
         "thread(s)%s\n",
         static_cast<long long>(r.rows), o.files[0].c_str(), r.model_path.c_str(),
         static_cast<long long>(r.model_version), r.seconds, r.rows_per_second(), r.threads,
         o.out.empty() ? "" : (", scores in " + o.out).c_str());
  if (r.bad_lines > 0) printf("  %lld bad line(s) skipped\n", static_cast<long long>(r.bad_lines));
  if (r.labeled_rows > 0) {
    printf("  over %lld labeled rows: AUC %.6f, logloss %.6f, accuracy %.6f\n",
           static_cast<long long>(r.labeled_rows), r.auc, r.logloss, r.accuracy);
  }
  return 0;
}

// Serves until SIGTERM or SIGINT.
int Serve(const FlagSet& f) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  // Before any thread starts, so every thread inherits the mask and the
  // signal reaches sigwait below.
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  deepfm::serving::ServeOptions o;
  Status s = MakeServeOptions(f, &o);
  if (!s.ok()) return Error("serve", s, 2);
  std::unique_ptr<deepfm::serving::PredictServer> server;
  s = deepfm::serving::PredictServer::Start(o, &server);
  if (!s.ok()) return Error("serve", s);
  const auto model = server->model();
  printf("deepfm serve: %s (version %lld) on %s%s%s; batching up to %d rows within %lld us\n",
         model->path().c_str(), static_cast<long long>(model->version()), server->address().c_str(),
         o.security.tls() ? " with TLS" : "", o.watch ? ", watching for newer exports" : "",
         o.max_batch_rows, static_cast<long long>(o.batch_wait_us));
  if (server->metrics_port() >= 0) {
    printf("  metrics on %s://%s:%d/metrics\n", o.security.tls() ? "https" : "http", o.bind.c_str(),
           server->metrics_port());
  }
  fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown();
  const deepfm::serving::ServeStats st = server->stats();
  printf("deepfm serve: stopped; %lld requests, %lld rows in %lld passes, %lld rejected\n",
         static_cast<long long>(st.requests), static_cast<long long>(st.rows),
         static_cast<long long>(st.passes), static_cast<long long>(st.rejected));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const std::string usage =
      "usage: deepfm train [flags]     run a job: local shards + workers, or a cluster spec's "
      "tasks\n"
      "       deepfm ps [flags]        run one parameter-server task (TF_CONFIG, --cluster_spec or "
      "TF1 flags)\n"
      "       deepfm worker [flags]    run one trainer task (chief or worker)\n"
      "       deepfm task [flags]      run whichever task the cluster spec says this is\n"
      "       deepfm status [flags]    show every trainer's heartbeat, from the chief shard\n"
      "       deepfm gen-data [flags]  write Criteo-schema train/eval data from a planted model\n"
      "       deepfm report JOB_DIR... write report.html: curves, step split, flags (several "
      "jobs overlaid)\n"
      "       deepfm export [flags]    a serving model from a checkpoint (--checkpoint, --out)\n"
      "       deepfm predict [flags]   score a data file with an export (--model, --data_location)\n"
      "       deepfm serve [flags]     the online Predict service over an export (--model, --port)\n"
      "       deepfm COMMAND --help    list a command's flags\n";
  if (argc < 2) {
    fputs(usage.c_str(), stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  unsigned mask = 0;
  if (cmd == "train")
    mask = kTrain;
  else if (cmd == "ps")
    mask = kPs;
  else if (cmd == "worker")
    mask = kWorker;
  else if (cmd == "task")
    mask = kPs | kWorker;
  else if (cmd == "status")
    mask = kStatus;
  else if (cmd == "gen-data")
    mask = kGenData;
  else if (cmd == "report")
    mask = kReport;
  else if (cmd == "export")
    mask = kExport;
  else if (cmd == "predict")
    mask = kPredict;
  else if (cmd == "serve")
    mask = kServe;
  else {
    fputs(usage.c_str(), stderr);
    return 2;
  }
  FlagSet f = FlagsOf(mask, cmd);
  if (std::find(args.begin(), args.end(), std::string("--help")) != args.end()) {
    fputs(f.Usage().c_str(), stdout);
    return 0;
  }
  // `report` takes job folders after its flags.
  std::vector<std::string> flag_args, folders;
  for (const std::string& a : args) (cmd == "report" && a.rfind("--", 0) != 0 ? folders : flag_args).push_back(a);
  Status s = f.Parse(flag_args);
  if (!s.ok()) {
    fprintf(stderr, "%s\n", s.message().c_str());
    return 2;
  }
  if (cmd == "ps" || cmd == "worker" || cmd == "task") {
    // RunTask initialises gRPC once it knows the task's role.
    const int code = RunTask(f, cmd == "ps" ? kPs : cmd == "worker" ? kWorker : 0u, cmd);
    fflush(stdout);
    fflush(stderr);
    std::_Exit(code);
  }
  const Command command = static_cast<Command>(mask);
  s = ValidateFlags(f, command);
  if (!s.ok()) return Error(cmd, s, 2);
  if (cmd == "gen-data") return GenData(f);
  if (cmd == "status") return JobStatus(f);
  if (cmd == "report") return Report(f, folders);
  if (cmd == "export") return Export(f);
  if (cmd == "predict") return Predict(f);
  if (cmd == "serve") return Serve(f);
  return RunTrainJob(f, SelfPath(argv[0]));
}

#include "launcher/train_job.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "common/checkpoint_manifest.h"
#include "common/report.h"
#include "launcher/job_folder.h"
#include "launcher/job_flags.h"
#include "launcher/job_runner.h"
#include "launcher/local_cluster.h"
#include "launcher/machine_info.h"
#include "launcher/standalone_job.h"
#include "serving/exporter.h"
#include "tools/datagen.h"

namespace deepfm::launcher {
namespace {

namespace fs = std::filesystem;

std::atomic<int> g_stop_signal{0};
void OnStopSignal(int sig) { g_stop_signal = sig; }

std::string Timestamp(const char* format = "%Y%m%d%H%M%S") {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof(buf), format, std::localtime(&t));
  return buf;
}

// job.json: the flags as this job runs them and the machine, for the report.
Status WriteJobInfoFile(const FlagSet& f, const fs::path& folder) {
  JobInfo info;
  info.command = f.GetBool("standalone") ? "train --standalone" : "train";
  info.started = Timestamp("%Y-%m-%dT%H:%M:%S");
  info.flags = f.Values();
  for (const auto& [name, value] : info.flags) {
    if (f.WasSet(name)) info.flags_set.push_back(name);
  }
  info.machine = DescribeMachine();
  return WriteJobInfo((folder / "job.json").string(), info);
}

// The default data folder gets generated data when it has none; an explicit
// one was checked to hold data by ValidateFlags.
Status PrepareData(const FlagSet& f) {
  const std::string data = f.Get("data_location");
  std::string train, eval;
  if (!IsDefaultDataLocation(f) || FindDataFiles(data, false, &train, &eval).ok())
    return Status::Ok();
  DataGenOptions go;
  go.out_dir = data;
  go.train_rows = f.GetInt("gen_rows");
  go.eval_rows = std::max<int64_t>(1000, go.train_rows / 5);
  go.seed = 2026;
  // The seed's job by default: DeepRec tianchi's ELM data (train.py).
  const std::string schema = f.Get("feature_spec") == "auto" ? "elm" : f.Get("feature_spec");
  if (schema != "criteo" && schema != "elm" && schema != "elm_exact") {
    return NotFound("no training data in " + data + ", and --feature_spec=" + schema +
                    " is no preset whose data `deepfm gen-data` can make; give --data_location");
  }
  printf(
      "deepfm: no training data in %s; generating %lld train / %lld eval rows (%s schema, "
      "planted model)\n",
      data.c_str(), static_cast<long long>(go.train_rows), static_cast<long long>(go.eval_rows),
      schema.c_str());
  fflush(stdout);
  DataGenReport r;
  Status s = GeneratePresetData(schema, go, &r);
  if (!s.ok()) return s;
  printf("deepfm: wrote %s and %s in %.1f s; oracle eval AUC %.4f (the best any model can do)\n",
         r.train_path.c_str(), r.eval_path.c_str(), r.seconds, r.oracle_auc);
  return Status::Ok();
}

// The job's token: the user's file, or a fresh random one in the job folder
// (readable by its owner only). Returns the file every task is given.
Status PrepareToken(const FlagSet& f, const fs::path& job, std::string* token_file) {
  if (!f.Get("auth_token_file").empty()) {
    *token_file = f.Get("auth_token_file");
    return Status::Ok();
  }
  *token_file = (job / "auth_token").string();
  return WriteFileAtomic(*token_file, rpc::RandomToken() + "\n", 0600);
}

// --export: a job that ended well leaves a servable model of its last
// checkpoint in <folder>/export.
int ExportAtEnd(const FlagSet& f, const fs::path& folder, int job_code) {
  if (job_code != 0 || !f.GetBool("export")) return job_code;
  serving::ExportOptions o = ExportOptionsFromFlags(f);
  o.checkpoint_dir = folder.string();
  o.out_dir = (folder / "export").string();
  o.restore_checkpoint.clear();
  o.trained_bf16 = f.GetBool("bf16") ? 1 : 0;
  o.steps_to_live = f.GetInt("ev_steps_to_live");
  serving::ExportSummary summary;
  const Status s = serving::ExportCheckpoint(o, &summary);
  if (!s.ok()) {
    fprintf(stderr, "deepfm: --export: %s\n", s.message().c_str());
    return 1;
  }
  fputs(serving::DescribeExport(summary).c_str(), stdout);
  fflush(stdout);
  return 0;
}

}  // namespace

int RunTrainJob(const FlagSet& f, const std::string& self) {
  Status s = PrepareData(f);
  if (!s.ok()) {
    fprintf(stderr, "deepfm: generating data: %s\n", s.message().c_str());
    return 1;
  }
  // The job folder: --checkpoint, else a fresh model_DeepFM_<timestamp>.
  fs::path folder = f.Get("checkpoint");
  if (folder.empty()) {
    std::string fresh;
    s = CreateFreshJobFolder(fs::absolute(f.Get("output_dir")).string(),
                             "model_DeepFM_" + Timestamp(), &fresh);
    if (!s.ok()) {
      fprintf(stderr, "deepfm: %s\n", s.message().c_str());
      return 1;
    }
    folder = fresh;
  }
  folder = fs::absolute(folder);
  std::error_code ec;
  fs::create_directories(folder / "logs", ec);
  if (ec) {
    fprintf(stderr, "deepfm: cannot create %s: %s\n", folder.c_str(), ec.message().c_str());
    return 1;
  }
  fs::remove(folder / "metrics.json", ec);
  s = WriteJobInfoFile(f, folder);
  if (!s.ok()) {
    fprintf(stderr, "deepfm: %s\n", s.message().c_str());
    return 1;
  }
  if (f.GetBool("standalone")) return ExportAtEnd(f, folder, RunStandaloneJob(f, folder.string()));

  ClusterSpec spec;
  std::string origin = "local job";
  if (f.Get("cluster_spec").empty()) {
    s = LocalClusterSpec(static_cast<int>(f.GetInt("ps_num")),
                         static_cast<int>(f.GetInt("worker_num")), &spec);
  } else {
    ClusterSources src;
    src.spec_file = f.Get("cluster_spec");
    s = ResolveClusterSpec(src, /*need_task=*/false, &spec, &origin);
  }
  std::string token_file;
  if (s.ok()) s = PrepareToken(f, folder, &token_file);
  rpc::Security security;
  if (s.ok()) {
    FlagSet with_token = f;
    with_token.Set("auth_token_file", token_file);
    s = LoadSecurity(with_token, &security);
  }
  if (s.ok()) s = WriteFileAtomic((folder / "cluster.json").string(), ClusterJson(spec) + "\n");
  if (!s.ok()) {
    fprintf(stderr, "deepfm: %s\n", s.message().c_str());
    return 1;
  }
  printf("deepfm: job folder %s (%zu ps, %d trainers; cluster spec %s)\n", folder.c_str(),
         spec.ps.size(), spec.num_trainers(), origin.c_str());
  fflush(stdout);

  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  JobRunner job(f, JobPaths{self, folder.string(), token_file}, spec, security, &g_stop_signal);
  return ExportAtEnd(f, folder, job.Run());
}

}  // namespace deepfm::launcher

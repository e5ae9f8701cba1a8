#include "launcher/standalone_job.h"

#include <glog/logging.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "common/exit_codes.h"
#include "common/timing.h"
#include "launcher/in_process_shards.h"
#include "launcher/job_flags.h"
#include "launcher/job_runner.h"
#include "launcher/standalone_progress.h"

namespace deepfm::launcher {
namespace {

int Fail(const Status& s) {
  fprintf(stderr, "deepfm: stand-alone job: %s\n", s.message().c_str());
  return ExitCodeFor(s);
}

}  // namespace

int RunStandaloneJob(const FlagSet& f, const std::string& folder) {
  Stopwatch wall;
  const int ps_num = static_cast<int>(f.GetInt("ps_num"));
  // The flags a shard and a trainer of this job would be given, as the
  // launcher gives them to its tasks.
  const Command tasks = static_cast<Command>(kPs | kWorker);
  FlagSet task = FlagsOf(tasks, "train --standalone");
  std::vector<std::string> args =
      ForwardedFlags(f, tasks, {"checkpoint", "output_dir", "auth_token_file", "cluster_spec"});
  args.push_back("--checkpoint=" + folder);
  Status s = task.Parse(args);
  if (!s.ok()) return Fail(s);
  // A spec only to number the tasks: nothing listens on these addresses.
  ClusterSpec spec;
  for (int i = 0; i <= ps_num; ++i) {
    (i < ps_num ? spec.ps : spec.worker).push_back("127.0.0.1:" + std::to_string(i + 1));
  }
  const rpc::Security in_process;  // no network: no token, no TLS
  std::vector<std::unique_ptr<ps::Shard>> shards;
  std::vector<std::unique_ptr<ShardEndpoint>> endpoints;
  std::vector<std::string> names;
  for (int i = 0; i < ps_num; ++i) {
    ClusterSpec own = spec;
    own.task_type = "ps";
    own.task_index = i;
    ps::PsTaskOptions po;
    s = MakePsTask(task, own, in_process, &po);
    if (!s.ok()) return Fail(s);
    std::unique_ptr<ps::Shard> shard = ps::Shard::Create(po.shard, &s);
    if (!shard) return Fail(s);
    std::string from;
    uint64_t rows = 0;
    s = ps::RestoreTaskShard(po, &shard, &from, &rows);
    if (!s.ok()) return Fail(s);
    if (!from.empty()) {
      LOG(INFO) << "in-process shard " << i << ": restored " << rows << " rows from " << from
                << " at global step " << shard->global_step();
    }
    endpoints.push_back(InProcessShardEndpoint(shard.get(), po.server.checkpoint_root));
    names.push_back("in-process shard " + std::to_string(i));
    shards.push_back(std::move(shard));
  }
  ClusterSpec trainer = spec;
  trainer.task_type = "worker";
  trainer.task_index = 0;
  WorkerTaskOptions wo;
  s = MakeWorkerTask(task, trainer, in_process, &wo);
  if (!s.ok()) return Fail(s);
  wo.client.hosts = names;
  // The one metrics page (--metrics_port) serves the shards' Stats too.
  for (int i = 0; i < ps_num; ++i) {
    wo.shard_stats.emplace_back("ps:" + std::to_string(i), [shard = shards[i].get()](ps::StatsResponse* r) {
      shard->Stats(r);
    });
  }
  std::unique_ptr<PsClient> client;
  s = PsClient::Attach(wo.client, std::move(endpoints), &client);
  if (!s.ok()) return Fail(s);
  printf("deepfm: stand-alone job in %s: 1 trainer and %d in-process shard(s), no RPC\n",
         folder.c_str(), ps_num);
  fflush(stdout);
  int code = 0;
  {
    StandaloneProgress bar(shards[0].get(), ExpectedSteps(f), f.GetInt("batch_size"));
    code = RunWorkerTask(wo, std::move(client));
  }
  if (code != 0) return code;
  return PrintJobResult(folder, wall.Seconds());
}

}  // namespace deepfm::launcher

#include "ps/ps_task.h"

#include <glog/logging.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/checkpoint_manifest.h"
#include "common/exit_codes.h"
#include "common/malloc_tuning.h"
#include "obs/metrics_endpoint.h"
#include "obs/shard_stats_metrics.h"
#include "ps/checkpoint.h"
#include "ps/peer_check.h"

namespace deepfm::ps {

Status RestoreTaskShard(const PsTaskOptions& o, std::unique_ptr<Shard>* shard, std::string* from,
                        uint64_t* rows) {
  namespace fs = std::filesystem;
  from->clear();
  *rows = 0;
  const std::string& root = o.server.checkpoint_root;
  if (!o.restore || root.empty()) return Status::Ok();
  const std::string flag = kRestoreCheckpointFlag;
  if (!o.restore_checkpoint.empty()) {
    int64_t step = 0;
    if (!ParseCheckpointFolderName(o.restore_checkpoint, &step)) {
      return InvalidArgument(flag + "=" + o.restore_checkpoint +
                             ": expected a checkpoint folder name ckpt-<step> under " + root);
    }
    const std::string folder = (fs::path(root) / o.restore_checkpoint).string();
    if (!Env::Default()->FileExists(folder)) {
      return NotFound(flag + "=" + o.restore_checkpoint + ": there is no " + folder +
                      "; give one of the ckpt-<step> folders under " + root);
    }
    Status s = RestoreShard(shard, folder, rows);
    if (!s.ok()) {
      return Status(s.code(), "cannot restore " + folder + " (" + flag + "): " + s.message());
    }
    *from = folder;
    return Status::Ok();
  }
  std::string latest;
  Status s = LatestCheckpoint(root, &latest);
  if (s.code() == Code::kNotFound) return Status::Ok();
  if (s.ok()) {
    s = RestoreShard(shard, latest, rows);
    if (s.ok()) {
      *from = latest;
      return Status::Ok();
    }
  } else {
    latest = (fs::path(root) / kCheckpointPointerFile).string();  // the pointer is damaged
  }
  // Only damage (DataLoss) is a reason to look elsewhere; a checkpoint that
  // does not fit this job (optimizer, slots) would not fit it any older.
  if (s.code() != Code::kDataLoss) {
    return Status(s.code(), "cannot restore " + latest + ": " + s.message());
  }
  std::string good;
  if (!o.fall_back_to_good_checkpoint || !FindNewestGoodCheckpoint(root, &good).ok() ||
      good == latest) {
    return CorruptLatestCheckpointError(root, latest, s);
  }
  const std::string warning = "the latest checkpoint " + latest + " is damaged (" + s.message() +
                              "); restoring the newest one that verifies, " + good +
                              ", instead: the steps after it are lost";
  LOG(ERROR) << o.name << ": " << warning;
  fprintf(stderr, "%s: WARNING: %s\n", o.name.c_str(), warning.c_str());
  fflush(stderr);
  // A failed restore leaves *shard as it was (RestoreShard stages), so the
  // older checkpoint loads into a clean shard.
  s = RestoreShard(shard, good, rows);
  if (!s.ok()) return Status(s.code(), "cannot restore " + good + ": " + s.message());
  *from = good;
  return Status::Ok();
}

namespace {

const sigset_t& StopSignals() {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    return s;
  }();
  return set;
}

}  // namespace

void BlockStopSignals() { pthread_sigmask(SIG_BLOCK, &StopSignals(), nullptr); }

int RunPsTask(const PsTaskOptions& o) {
  TuneMallocForLargeBuffers();
  // SIGTERM/SIGINT are blocked in every thread and taken by sigwait on one
  // thread, which can then shut the server down in order (a signal handler
  // could not safely do that). Threads started before this (gRPC's, when
  // the caller initialised it first) would still take them: `deepfm ps`
  // blocks them before anything starts.
  BlockStopSignals();

  Status st;
  auto shard = Shard::Create(o.shard, &st);
  if (!shard) {
    fprintf(stderr, "%s: %s\n", o.name.c_str(), st.ToString().c_str());
    return 1;
  }
  std::string from;
  uint64_t rows = 0;
  st = RestoreTaskShard(o, &shard, &from, &rows);
  if (!st.ok()) {
    fprintf(stderr, "%s: %s\n", o.name.c_str(), st.message().c_str());
    return ExitCodeFor(st);
  }
  if (!from.empty()) {
    LOG(INFO) << o.name << ": restored " << rows << " rows from " << from << " at global step "
              << shard->global_step();
  } else if (o.restore && !o.server.checkpoint_root.empty()) {
    LOG(INFO) << o.name << ": no checkpoint under " << o.server.checkpoint_root
              << "; starting fresh";
  }
  if (!o.peers.empty()) {
    PeerCheckOptions pc;
    pc.hosts = o.peers;
    pc.self = o.shard.shard_index;
    pc.restored_step = shard->restored_global_step();
    pc.restored_from = from;
    pc.security = o.server.security;
    st = CheckPeersNotAhead(pc);
    if (!st.ok()) {
      fprintf(stderr, "%s: %s\n", o.name.c_str(), st.message().c_str());
      return ExitCodeFor(st);
    }
  }
  // The page starts before the server, so its handlers are timed from the
  // first call; it stops after the server has (see below).
  std::unique_ptr<obs::MetricsEndpoint> metrics;
  std::unique_ptr<obs::RpcLatency> latency;
  ServerOptions server_options = o.server;
  if (o.metrics_port > 0) {
    obs::MetricsEndpointOptions mo;
    mo.bind = o.server.bind;
    mo.port = o.metrics_port;
    mo.security = o.metrics_security;
    mo.tls = o.server.security;
    mo.insecure = o.insecure;
    st = obs::MetricsEndpoint::Start(mo, &metrics);
    if (!st.ok()) {
      fprintf(stderr, "%s: %s\n", o.name.c_str(), st.message().c_str());
      return ExitCodeFor(st);
    }
    latency = std::make_unique<obs::RpcLatency>(
        metrics->registry(), "deepfm_rpc_server_seconds", "time in a shard's RPC handler",
        PsServer::Methods(), prometheus::Labels{{"task", o.name}});
    server_options.rpc_latency = latency.get();
  }
  auto server = PsServer::Start(server_options, std::move(shard), &st);
  if (!server) {
    fprintf(stderr, "%s: %s\n", o.name.c_str(), st.ToString().c_str());
    return ExitCodeFor(st);  // a port still held by a dying predecessor: a restart may help
  }
  std::thread([srv = server.get(), name = o.name] {
    int sig = 0;
    sigwait(&StopSignals(), &sig);
    LOG(INFO) << name << ": signal " << sig << ": shutting down";
    // Only request it: Wait() below returns when it is done and the server
    // is destroyed, which this thread must no longer touch.
    srv->RequestShutdown();
  }).detach();
  // For people; readiness is the health service's SERVING.
  printf("%s: shard %u of %u serving on %s (%s%s), optimizer %s\n", o.name.c_str(),
         o.shard.shard_index, o.shard.num_shards, server->address().c_str(),
         o.server.security.tls() ? "TLS" : "plaintext",
         o.server.security.has_token() ? ", token" : "",
         OptimizerName(o.shard.optimizer.type).c_str());
  if (metrics) {
    metrics->Add(std::make_shared<obs::ShardStatsCollector>(
        o.name, [srv = server.get()](StatsResponse* r) { srv->shard().Stats(r); }));
    printf("%s: metrics at %s\n", o.name.c_str(), metrics->url().c_str());
  }
  fflush(stdout);
  server->Wait();
  // No scrape may read the shard once it is gone: the page stops first.
  metrics.reset();
  LOG(INFO) << o.name << ": stopped";
  return 0;
}

}  // namespace deepfm::ps

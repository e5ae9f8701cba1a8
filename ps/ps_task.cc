#include "ps/ps_task.h"

#include <glog/logging.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "common/checkpoint_manifest.h"
#include "common/malloc_tuning.h"
#include "ps/checkpoint.h"

namespace deepfm::ps {

int RunPsTask(const PsTaskOptions& o) {
  TuneMallocForLargeBuffers();
  // SIGTERM/SIGINT are blocked in every thread and taken by sigwait on one
  // thread, which can then shut the server down in order (a signal handler
  // could not safely do that).
  static sigset_t stop_signals;  // the signal thread outlives this frame
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Status st;
  auto shard = Shard::Create(o.shard, &st);
  if (!shard) {
    fprintf(stderr, "%s: %s\n", o.name.c_str(), st.ToString().c_str());
    return 1;
  }
  if (o.restore && !o.server.checkpoint_root.empty()) {
    std::string folder;
    st = LatestCheckpoint(o.server.checkpoint_root, &folder);
    if (st.code() == Code::kNotFound) {
      LOG(INFO) << o.name << ": no checkpoint under " << o.server.checkpoint_root
                << "; starting fresh";
    } else if (!st.ok()) {
      fprintf(stderr, "%s: %s\n", o.name.c_str(), st.message().c_str());
      return 1;
    } else {
      uint64_t rows = 0;
      st = RestoreShard(&shard, folder, &rows);
      if (!st.ok()) {
        fprintf(stderr, "%s: cannot restore %s: %s\n", o.name.c_str(), folder.c_str(),
                st.message().c_str());
        return 1;
      }
      LOG(INFO) << o.name << ": restored " << rows << " rows from " << folder << " at global step "
                << shard->global_step();
    }
  }
  auto server = PsServer::Start(o.server, std::move(shard), &st);
  if (!server) {
    fprintf(stderr, "%s: %s\n", o.name.c_str(), st.ToString().c_str());
    return 1;
  }
  std::thread([srv = server.get(), name = o.name] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
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
  fflush(stdout);
  server->Wait();
  LOG(INFO) << o.name << ": stopped";
  return 0;
}

}  // namespace deepfm::ps

// ps_server: one parameter-server shard. Flags only; the logic is in libps.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <cstdio>

#include "common/malloc_tuning.h"
#include "common/checkpoint_manifest.h"
#include "ps/checkpoint.h"
#include "ps/ps_server.h"

DEFINE_string(bind, "127.0.0.1", "address to listen on (0.0.0.0 for every interface)");
DEFINE_int32(port, 0, "port to listen on; 0 picks a free one (printed as 'listening on')");
DEFINE_int32(shard_index, 0, "this shard's index in [0, num_shards)");
DEFINE_int32(num_shards, 1, "number of shards in the job");
DEFINE_int32(threads, 2, "gRPC handler threads");
DEFINE_string(optimizer, "adamasync", "sgd, adam, adamasync, adagrad or adagraddecay");
DEFINE_double(learning_rate, 0.001, "learning rate");
DEFINE_double(beta1, 0.9, "adam beta1");
DEFINE_double(beta2, 0.999, "adam beta2");
DEFINE_double(epsilon, 1e-8, "adam epsilon");
DEFINE_double(initial_accumulator, 0.1, "adagrad(decay) initial accumulator and decay floor");
DEFINE_int64(decay_period, 100000, "adagraddecay: global steps between accumulator decays");
DEFINE_double(decay_rate, 0.9, "adagraddecay: accumulator decay factor");
DEFINE_string(checkpoint_dir, "", "restore from the newest checkpoint under this folder, if it has one");
DEFINE_int32(max_message_mb, 512, "largest gRPC message accepted or sent, MiB");


int main(int argc, char** argv) {
  gflags::SetUsageMessage("ps_server --port=P --shard_index=I --num_shards=N [--optimizer=...]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  deepfm::TuneMallocForLargeBuffers();
  // SIGTERM/SIGINT are blocked in every thread and taken by sigwait on one
  // thread, which can then shut the server down in order (a signal handler
  // could not safely do that).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  deepfm::ps::ShardOptions so;
  so.shard_index = FLAGS_shard_index;
  so.num_shards = FLAGS_num_shards;
  deepfm::Status st = deepfm::ps::ParseOptimizerType(FLAGS_optimizer, &so.optimizer.type);
  if (!st.ok()) {
    fprintf(stderr, "ps_server: --optimizer: %s\n", st.message().c_str());
    return 2;
  }
  so.optimizer.learning_rate = FLAGS_learning_rate;
  so.optimizer.beta1 = FLAGS_beta1;
  so.optimizer.beta2 = FLAGS_beta2;
  so.optimizer.epsilon = FLAGS_epsilon;
  so.optimizer.initial_accumulator = FLAGS_initial_accumulator;
  so.optimizer.decay_period = FLAGS_decay_period;
  so.optimizer.decay_rate = FLAGS_decay_rate;
  auto shard = deepfm::ps::Shard::Create(so, &st);
  if (!shard) {
    fprintf(stderr, "ps_server: %s\n", st.ToString().c_str());
    return 2;
  }
  if (!FLAGS_checkpoint_dir.empty()) {
    std::string folder;
    st = deepfm::LatestCheckpoint(FLAGS_checkpoint_dir, &folder);
    if (st.code() == deepfm::Code::kNotFound) {
      LOG(INFO) << "no checkpoint under " << FLAGS_checkpoint_dir << "; starting fresh";
    } else if (!st.ok()) {
      fprintf(stderr, "ps_server: %s\n", st.message().c_str());
      return 1;
    } else {
      uint64_t rows = 0;
      st = deepfm::ps::RestoreShard(shard.get(), folder, &rows);
      if (!st.ok()) {
        fprintf(stderr, "ps_server: cannot restore %s: %s\n", folder.c_str(), st.message().c_str());
        return 1;
      }
      LOG(INFO) << "restored " << rows << " rows from " << folder << " at global step "
                << shard->global_step();
    }
  }
  deepfm::ps::ServerOptions opts;
  opts.bind = FLAGS_bind;
  opts.port = FLAGS_port;
  opts.threads = FLAGS_threads;
  opts.max_message_bytes = FLAGS_max_message_mb << 20;
  auto server = deepfm::ps::PsServer::Start(opts, std::move(shard), &st);
  if (!server) {
    fprintf(stderr, "ps_server: %s\n", st.ToString().c_str());
    return 1;
  }
  std::thread([&stop_signals, srv = server.get()] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    LOG(INFO) << "signal " << sig << ": shutting down";
    // Only request it: main's Wait() returns when it is done and then
    // destroys the server, which this thread must no longer touch.
    srv->RequestShutdown();
  }).detach();
  // The launcher reads this exact line to learn the port.
  printf("ps_server shard %d/%d listening on %s optimizer=%s\n", FLAGS_shard_index,
         FLAGS_num_shards, server->address().c_str(), FLAGS_optimizer.c_str());
  fflush(stdout);
  server->Wait();
  LOG(INFO) << "shard " << FLAGS_shard_index << " stopped";
  return 0;
}

// A real `deepfm ps` process under a memory budget, fed a long tail of new
// keys through real Push RPCs while its resident memory is sampled from
// /proc: what a container's memory limit would see. Shared by the test that
// holds the shard to its budget (tests/e2e/shard_memory_test.cc) and the
// benchmark that reports the figures (bench/shard_rss_bench.cc).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/process_memory.h"
#include "common/status.h"
#include "tests/support/free_port.h"
#include "tests/support/process.h"
#include "worker/ps_client.h"

namespace deepfm::testing_util {

struct ShardMemoryProbe {
  std::string deepfm_bin;  // the program
  std::string folder;      // the shard's job folder (created)
  int64_t budget_mb = 64;  // --ps_memory_budget_mb
  int64_t keys = 1000000;  // distinct keys, each pushed once: every push brings new rows
  int batch = 8192;        // keys per push (one training step's unique keys)
  int dim = 16;            // embedding dimension: rows of dim + 1 floats
  // A dense variable of this many floats, pushed every step (a DNN's
  // weights, with their optimizer slots on the shard).
  int64_t dense_floats = 300000;
  std::string extra_flags;  // more flags for the shard
};

struct ShardMemoryFigures {
  uint64_t idle_rss = 0;      // after registration, before the first push
  uint64_t sampled_peak = 0;  // the most VmRSS seen, sampled every 2 ms
  uint64_t peak_rss = 0;      // the kernel's VmHWM at the end
  uint64_t final_rss = 0;
  uint64_t tables_bytes = 0, budget_peak = 0, rows = 0, evicted = 0;
  uint64_t stats_rss = 0, stats_peak_rss = 0, stats_budget = 0;  // as Stats reports them
  double seconds = 0;                                            // of the pushes
};

inline Status ProbeShardMemory(const ShardMemoryProbe& p, ShardMemoryFigures* out) {
  *out = ShardMemoryFigures();
  std::filesystem::create_directories(p.folder);
  const int port = FreeLoopbackPort(), worker_port = FreeLoopbackPort();
  const std::string host = "127.0.0.1:" + std::to_string(port);
  const std::string cmd = p.deepfm_bin + " ps --ps_hosts=" + host +
                          " --worker_hosts=127.0.0.1:" + std::to_string(worker_port) +
                          " --task_index=0 --optimizer=adam --checkpoint=" + p.folder +
                          " --ps_memory_budget_mb=" + std::to_string(p.budget_mb) + " " +
                          p.extra_flags;
  const std::string log = p.folder + "/shard.log";
  FILE* logf = std::fopen(log.c_str(), "w");
  if (!logf) return Internal("cannot write " + log);
  const pid_t pid = StartShell(cmd, fileno(logf));
  std::fclose(logf);
  auto stop = [&](const Status& s) {
    kill(pid, SIGTERM);
    int st = 0;
    WaitExit(pid, 30, &st);
    return s;
  };
  PsClientOptions co;
  co.hosts = {host};
  co.connect_timeout_ms = 30000;
  std::unique_ptr<PsClient> client;
  Status s = PsClient::Connect(co, &client);
  if (!s.ok()) return stop(s);
  ps::TableSpec spec;
  spec.set_name("long_tail");
  spec.set_dim(static_cast<uint32_t>(p.dim + 1));
  spec.set_init_stddev(0.01f);
  spec.set_seed(7);
  int table = -1, dense = -1;
  s = client->RegisterTable(spec, &table);
  if (s.ok()) {
    s = client->RegisterDense("dnn", {p.dense_floats}, std::vector<float>(p.dense_floats, 0.01f),
                              &dense);
  }
  if (!s.ok()) return stop(s);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  out->idle_rss = ReadProcessMemory(pid).rss_bytes;

  std::atomic<bool> done{false};
  std::atomic<uint64_t> sampled{out->idle_rss};
  std::thread sampler([&] {
    while (!done.load()) {
      const uint64_t rss = ReadProcessMemory(pid).rss_bytes;
      uint64_t was = sampled.load();
      while (rss > was && !sampled.compare_exchange_weak(was, rss)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  const int row = p.dim + 1;
  std::vector<uint64_t> keys(p.batch);
  std::vector<float> grads(static_cast<size_t>(p.batch) * row, 0.001f);
  std::vector<float> dense_grad(p.dense_floats, 0.001f);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t at = 0; at < p.keys && s.ok(); at += p.batch) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(p.batch, p.keys - at));
    for (size_t i = 0; i < n; ++i) keys[i] = Mix64(static_cast<uint64_t>(at) + i + 1);
    int64_t step = 0;
    s = client->Push(table, keys.data(), n, grads.data(), {dense_grad.data()},
                     /*advance_step=*/true, &step);
  }
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The shard's sweeper evicts in the background: let it settle.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  done = true;
  sampler.join();
  if (!s.ok()) return stop(s);
  out->sampled_peak = sampled.load();
  out->peak_rss = ReadProcessMemory(pid).peak_rss_bytes;
  out->final_rss = ReadProcessMemory(pid).rss_bytes;
  std::vector<ps::StatsResponse> stats;
  s = client->Stats(&stats);
  if (!s.ok()) return stop(s);
  const ps::StatsResponse& st = stats[0];
  for (const ps::TableStats& t : st.tables()) {
    out->tables_bytes += t.bytes();
    out->rows += t.rows();
    out->evicted += t.evicted_budget();
  }
  out->budget_peak = st.memory_peak_bytes();
  out->stats_budget = st.memory_budget_bytes();
  out->stats_rss = st.process_rss_bytes();
  out->stats_peak_rss = st.process_peak_rss_bytes();
  return stop(Status::Ok());
}

}  // namespace deepfm::testing_util

// What observability costs per training step, measured in isolation (the
// end-to-end A/B in bench/obs_overhead.sh is within this VM's run-to-run
// noise, so these put a bound under it):
//   BM_MetricsPerStep      the Prometheus updates of one step (pull, push,
//                          compute stages)
//   BM_UntracedSpans       the ~20 spans of a step when it is not traced
//                          (a thread-local read each)
//   BM_TracedStep          recording a traced step's spans (~40, as two shards
//                          send back theirs) and writing its timeline file
//   BM_ShardScrape         one scrape of a shard's Stats families, serialised
// Divide by the step time (512 rows at 30k samples/s: ~17 ms) for the share.
#include <benchmark/benchmark.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <filesystem>

#include "obs/shard_stats_metrics.h"
#include "obs/timeline.h"
#include "obs/trainer_metrics.h"

namespace deepfm::obs {
namespace {

void BM_MetricsPerStep(benchmark::State& state) {
  prometheus::Registry r;
  TrainerMetrics m(r, "worker:0");
  for (auto _ : state) {
    m.Pulled(512, 0, 9000, 80000, 600000, 1e-4, 2e-4, 3e-3);
    m.Pushed(9000, 600000, 100, 2e-3, 1234);
    m.Stepped(512, 0.47, 1e-3, 1e-2, 1e-5);
  }
}
BENCHMARK(BM_MetricsPerStep);

void BM_UntracedSpans(benchmark::State& state) {
  TraceScope scope(nullptr, "compute");
  for (auto _ : state) {
    for (int i = 0; i < 20; ++i) {
      ScopedSpan span("gemm");
      benchmark::DoNotOptimize(&span);
    }
  }
}
BENCHMARK(BM_UntracedSpans);

void BM_TracedStep(benchmark::State& state) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "deepfm_obs_micro_timeline.json").string();
  ps::PullResponse shard;
  for (int i = 0; i < 5; ++i) {
    ps::TraceSpan* s = shard.add_trace();
    s->set_name("apply sparse");
    s->set_track("requests");
    s->set_start_us(1000 + i);
    s->set_dur_us(100);
  }
  for (auto _ : state) {
    TraceRecorder rec("worker:0");
    {
      TraceScope scope(&rec, "compute");
      for (int i = 0; i < 30; ++i) ScopedSpan span("gemm");
    }
    for (int s = 0; s < 2; ++s) rec.AddRemote("ps:" + std::to_string(s), shard.trace());
    if (!rec.WriteChromeTrace(path).ok()) state.SkipWithError("cannot write the timeline");
  }
  std::remove(path.c_str());
}
BENCHMARK(BM_TracedStep);

void BM_ShardScrape(benchmark::State& state) {
  ps::StatsResponse stats;
  stats.set_pulled_keys(123456789);
  stats.add_tables()->set_name("deepfm/embedding");
  for (auto _ : state) {
    benchmark::DoNotOptimize(prometheus::TextSerializer().Serialize(ShardStatsFamilies(stats, "ps:0")));
  }
}
BENCHMARK(BM_ShardScrape);

}  // namespace
}  // namespace deepfm::obs

BENCHMARK_MAIN();

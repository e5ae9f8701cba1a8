#include "obs/timeline.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

namespace deepfm::obs {
namespace {

TEST(TimelineTest, SpansRecordOnlyWhereARecorderIsCurrent) {
  TraceRecorder rec("worker:0");
  { ScopedSpan untraced("nothing"); }
  EXPECT_EQ(rec.size(), 0u);
  {
    TraceScope scope(&rec, "compute");
    EXPECT_EQ(CurrentTrace(), &rec);
    ScopedSpan outer("forward");
    {
      // A nested scope with no recorder (an untraced call inside) records
      // nothing and gives the outer one back.
      TraceScope off(nullptr, "other");
      ScopedSpan skipped("skipped");
    }
    EXPECT_EQ(CurrentTrace(), &rec);
    ScopedSpan inner("gemm");
  }
  EXPECT_EQ(CurrentTrace(), nullptr);
  EXPECT_EQ(rec.size(), 2u);
  // Another thread has no recorder of its own.
  std::thread([&] {
    ScopedSpan other("elsewhere");
    EXPECT_EQ(CurrentTrace(), nullptr);
  }).join();
  EXPECT_EQ(rec.size(), 2u);
}

TEST(TimelineTest, ChromeJsonNamesEveryProcessAndTrackAndKeepsTimes) {
  TraceRecorder rec("worker:0");
  rec.Add("pull ps:0", "Pull", 1000, 1500);
  rec.Add("prefetch", "read", 900, 950);
  ps::PullResponse shard;
  ps::TraceSpan* s = shard.add_trace();
  s->set_name("Pull");
  s->set_track("requests");
  s->set_start_us(1100);
  s->set_dur_us(300);
  rec.AddRemote("ps:0", shard.trace());
  // A shard's own recorder round-trips through the response.
  TraceRecorder back("");
  back.Add("requests", "lookup", 1150, 1200);
  back.CopyTo(shard.mutable_trace());
  ASSERT_EQ(shard.trace_size(), 2);
  EXPECT_EQ(shard.trace(1).name(), "lookup");
  EXPECT_EQ(shard.trace(1).dur_us(), 50);

  const nlohmann::json doc = nlohmann::json::parse(rec.ChromeJson());
  std::map<int, std::string> procs;
  std::map<std::pair<int, int>, std::string> tracks;
  std::vector<nlohmann::json> spans;
  for (const auto& e : doc.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "process_name") procs[e.at("pid")] = e.at("args").at("name");
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      tracks[{e.at("pid"), e.at("tid")}] = e.at("args").at("name");
    if (e.at("ph") == "X") spans.push_back(e);
  }
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs.at(1), "worker:0");
  EXPECT_EQ(procs.at(2), "ps:0");
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(tracks.at({1, spans[0].at("tid")}), "pull ps:0");
  EXPECT_EQ(spans[0].at("ts"), 1000);
  EXPECT_EQ(spans[0].at("dur"), 500);
  EXPECT_EQ(tracks.at({1, spans[1].at("tid")}), "prefetch");
  EXPECT_NE(spans[0].at("tid"), spans[1].at("tid"));
  EXPECT_EQ(spans[2].at("pid"), 2);
  EXPECT_EQ(tracks.at({2, spans[2].at("tid")}), "requests");
  EXPECT_EQ(spans[2].at("ts"), 1100);
  EXPECT_EQ(spans[2].at("dur"), 300);
}

}  // namespace
}  // namespace deepfm::obs

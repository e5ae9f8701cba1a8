#include "obs/event_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "obs/tfrecord.h"
#include "proto/tensorboard.pb.h"

namespace deepfm::obs {
namespace {

namespace fs = std::filesystem;

TEST(EventWriterTest, WritesAVersionEventThenScalarsTensorBoardReads) {
  const fs::path dir = fs::temp_directory_path() / ("events_" + std::to_string(getpid())) / "train";
  fs::remove_all(dir.parent_path());
  std::string path;
  {
    std::unique_ptr<EventWriter> w;
    ASSERT_TRUE(EventWriter::Open(dir.string(), &w).ok());
    ASSERT_TRUE(w->AddScalars(100, {{"loss", 0.5}, {"auc", 0.75}}, 1234.5).ok());
    ASSERT_TRUE(w->AddScalars(200, {{"loss", 0.25}}).ok());
    path = w->path();
  }
  EXPECT_EQ(fs::path(path).parent_path(), dir);
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  size_t at = 0;
  std::string rec;
  std::vector<tb::Event> events;
  while (ReadRecord(bytes, &at, &rec)) {
    tb::Event e;
    ASSERT_TRUE(e.ParseFromString(rec));
    events.push_back(e);
  }
  EXPECT_EQ(at, bytes.size()) << "trailing bytes the reader could not frame";
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[1].step(), 100);
  EXPECT_EQ(events[1].wall_time(), 1234.5);
  ASSERT_EQ(events[1].summary().value_size(), 2);
  EXPECT_EQ(events[1].summary().value(0).tag(), "auc");  // tags in name order
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 0.75f);
  EXPECT_EQ(events[1].summary().value(1).tag(), "loss");
  EXPECT_EQ(events[2].step(), 200);
  EXPECT_GT(events[2].wall_time(), 1e9);  // now, in seconds since the epoch
  // TensorFlow's field numbers: wall_time 1 (double), step 2, summary 5;
  // summary.value 1; value.tag 1, value.simple_value 2 (float).
  const std::string raw = events[2].SerializeAsString();
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), (1 << 3) | 1);  // field 1, 64-bit
  EXPECT_EQ(static_cast<unsigned char>(raw[9]), (2 << 3) | 0);  // field 2, varint
  fs::remove_all(dir.parent_path());
}

}  // namespace
}  // namespace deepfm::obs

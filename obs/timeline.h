// --timeline N: what one training step did, as Chrome trace event JSON
// (timeline-<global step>.json in the job folder; open it in Perfetto,
// ui.perfetto.dev, or chrome://tracing).
//
// A TraceRecorder collects spans for one step: each names a process (the
// trainer, or a shard that sent back its own spans), a track (a thread's
// role: prefetch, compute, push, "pull ps:1", a shard's requests) and a
// start and duration in microseconds of the wall clock, which every process
// of a job shares (NTP across hosts), so a pull on the trainer encloses its
// handling on the shard.
//
// Code deep in a stage records without being handed the recorder: a
// TraceScope makes a recorder current on its thread (with the thread's
// track), and a ScopedSpan records on it, or does nothing when none is (a
// thread-local read: free on the untraced steps).
#pragma once

#include <google/protobuf/repeated_field.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/ps.pb.h"

namespace deepfm::obs {

// Microseconds since the Unix epoch.
int64_t WallMicros();

class TraceRecorder {
 public:
  // `process`: how this process is named in the trace ("worker:0", "ps:1").
  explicit TraceRecorder(std::string process) : process_(std::move(process)) {}

  // Thread-safe: the stages of a step run on different threads.
  void Add(const std::string& track, const std::string& name, int64_t start_us, int64_t end_us);
  // Spans another process sent back (a shard's, from a traced response).
  void AddRemote(const std::string& process,
                 const google::protobuf::RepeatedPtrField<ps::TraceSpan>& spans);
  // This recorder's own spans as proto, for a shard's response.
  void CopyTo(google::protobuf::RepeatedPtrField<ps::TraceSpan>* out) const;

  // {"traceEvents": [...]}: a process_name and thread_name event for every
  // process and track, then one complete ("X") event per span.
  std::string ChromeJson() const;
  Status WriteChromeTrace(const std::string& path) const;
  size_t size() const;

 private:
  struct Span {
    std::string process, track, name;
    int64_t start_us, dur_us;
  };
  const std::string process_;
  mutable std::mutex mu_;
  std::vector<Span> spans_ DEEPFM_GUARDED_BY(mu_);
};

// The recorder current on this thread, null when none.
TraceRecorder* CurrentTrace();

// Makes `recorder` (may be null: then nothing is recorded) current on this
// thread with `track` as the track ScopedSpans land on; restores the
// previous one when it goes.
class TraceScope {
 public:
  TraceScope(TraceRecorder* recorder, std::string track);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  TraceRecorder* prev_recorder_;
  std::string prev_track_;
};

// Records [construction, destruction) as `name` on this thread's current
// recorder and track, if any. `name` must outlive the span (a literal).
class ScopedSpan {
 public:
  explicit ScopedSpan(const char* name);
  ~ScopedSpan();
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;

 private:
  TraceRecorder* recorder_;
  const char* name_;
  int64_t start_us_ = 0;
};

}  // namespace deepfm::obs

#include "obs/timeline.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

namespace deepfm::obs {

namespace {

thread_local TraceRecorder* t_recorder = nullptr;

std::string& ThreadTrack() {
  thread_local std::string track;
  return track;
}

}  // namespace

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void TraceRecorder::Add(const std::string& track, const std::string& name, int64_t start_us,
                        int64_t end_us) {
  std::lock_guard<std::mutex> lock(mu_);
  spans_.push_back(Span{process_, track, name, start_us, std::max<int64_t>(0, end_us - start_us)});
}

void TraceRecorder::AddRemote(const std::string& process,
                              const google::protobuf::RepeatedPtrField<ps::TraceSpan>& spans) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const ps::TraceSpan& s : spans) {
    spans_.push_back(Span{process, s.track(), s.name(), s.start_us(), std::max<int64_t>(0, s.dur_us())});
  }
}

void TraceRecorder::CopyTo(google::protobuf::RepeatedPtrField<ps::TraceSpan>* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Span& s : spans_) {
    ps::TraceSpan* t = out->Add();
    t->set_name(s.name);
    t->set_track(s.track);
    t->set_start_us(s.start_us);
    t->set_dur_us(s.dur_us);
  }
}

size_t TraceRecorder::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spans_.size();
}

std::string TraceRecorder::ChromeJson() const {
  std::vector<Span> spans;
  {
    std::lock_guard<std::mutex> lock(mu_);
    spans = spans_;
  }
  // Small ids in order of first appearance: this process first, then the
  // shards as their spans came; tracks likewise within each process.
  std::map<std::string, int> pids;
  std::map<std::pair<int, std::string>, int> tids;
  nlohmann::json events = nlohmann::json::array();
  auto pid_of = [&](const std::string& p) {
    auto [it, fresh] = pids.emplace(p, static_cast<int>(pids.size()) + 1);
    if (fresh) {
      events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", it->second}, {"tid", 0},
                        {"args", {{"name", p}}}});
      events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", it->second},
                        {"tid", 0}, {"args", {{"sort_index", it->second}}}});
    }
    return it->second;
  };
  pid_of(process_);
  for (const Span& s : spans) {
    const int pid = pid_of(s.process);
    int tid = 0;
    for (const auto& [key, id] : tids) tid += key.first == pid;
    auto [it, fresh] = tids.emplace(std::make_pair(pid, s.track), tid + 1);
    if (fresh) {
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", pid}, {"tid", it->second},
                        {"args", {{"name", s.track}}}});
      events.push_back({{"ph", "M"}, {"name", "thread_sort_index"}, {"pid", pid},
                        {"tid", it->second}, {"args", {{"sort_index", it->second}}}});
    }
    events.push_back({{"ph", "X"}, {"cat", "deepfm"}, {"name", s.name}, {"pid", pid},
                      {"tid", it->second}, {"ts", s.start_us}, {"dur", s.dur_us}});
  }
  return nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() + "\n";
}

Status TraceRecorder::WriteChromeTrace(const std::string& path) const {
  const std::string json = ChromeJson();
  const std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (!f) return Internal("cannot write " + tmp);
  const bool ok = fwrite(json.data(), 1, json.size(), f) == json.size();
  if (fclose(f) != 0 || !ok) return Internal("cannot write " + tmp);
  // Whole or absent: a viewer never opens half a file.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Internal("cannot rename " + tmp);
  return Status::Ok();
}

TraceRecorder* CurrentTrace() { return t_recorder; }

TraceScope::TraceScope(TraceRecorder* recorder, std::string track)
    : prev_recorder_(t_recorder), prev_track_(ThreadTrack()) {
  t_recorder = recorder;
  ThreadTrack() = std::move(track);
}

TraceScope::~TraceScope() {
  t_recorder = prev_recorder_;
  ThreadTrack() = std::move(prev_track_);
}

ScopedSpan::ScopedSpan(const char* name) : recorder_(t_recorder), name_(name) {
  if (recorder_) start_us_ = WallMicros();
}

ScopedSpan::~ScopedSpan() {
  if (recorder_) recorder_->Add(ThreadTrack(), name_, start_us_, WallMicros());
}

}  // namespace deepfm::obs

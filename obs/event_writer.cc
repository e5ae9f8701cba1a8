#include "obs/event_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "obs/tfrecord.h"
#include "proto/tensorboard.pb.h"

namespace deepfm::obs {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Status EventWriter::Open(const std::string& dir, std::unique_ptr<EventWriter>* out) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const double now = Now();
  // TensorFlow names files by second and host; the pid keeps two writers
  // started in the same second apart.
  const std::string path = (std::filesystem::path(dir) /
                            ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) +
                             "." + host + "." + std::to_string(getpid())))
                               .string();
  std::unique_ptr<EventWriter> w(new EventWriter());
  w->path_ = path;
  w->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Internal("cannot create " + path + ": " + std::strerror(errno));
  tb::Event first;
  first.set_wall_time(now);
  first.set_file_version("brain.Event:2");
  Status s = w->Write(first.SerializeAsString());
  if (!s.ok()) return s;
  *out = std::move(w);
  return Status::Ok();
}

EventWriter::~EventWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status EventWriter::AddScalars(int64_t step, const std::map<std::string, double>& scalars,
                               double wall_time) {
  tb::Event e;
  e.set_wall_time(wall_time > 0 ? wall_time : Now());
  e.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tb::SummaryValue* v = e.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  return Write(e.SerializeAsString());
}

Status EventWriter::Write(const std::string& event_bytes) {
  std::string record;
  AppendRecord(event_bytes, &record);
  size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Internal("writing " + path_ + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace deepfm::obs

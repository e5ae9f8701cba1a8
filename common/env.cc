#include "common/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace deepfm {
namespace {

namespace fs = std::filesystem;

// Small appends (a row at a time) cost one memcpy, not one system call.
constexpr size_t kWriteBufferBytes = 64 << 10;

Status PosixError(const std::string& what, const std::string& path, int err) {
  std::string m = what + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return NotFound(std::move(m));
  if (err == EEXIST) return Status(Code::kAlreadyExists, std::move(m));
  return Internal(std::move(m));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : WritableFile(std::move(path)), fd_(fd) {
    buffer_.reserve(kWriteBufferBytes);
  }
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return Closed();
    if (!error_.ok()) return error_;
    if (buffer_.size() + data.size() <= kWriteBufferBytes) {
      buffer_.append(data.data(), data.size());
      return Status::Ok();
    }
    Status s = FlushBuffer();
    if (!s.ok()) return s;
    if (data.size() < kWriteBufferBytes) {
      buffer_.append(data.data(), data.size());
      return Status::Ok();
    }
    return WriteAll(data);
  }

  Status Sync() override {
    if (fd_ < 0) return Closed();
    Status s = FlushBuffer();
    if (!s.ok()) return s;
    // Linux may drop the unwritten pages after a failed fsync and report
    // success next time, so the failure sticks.
    if (::fsync(fd_) != 0) error_ = PosixError("fsync", path(), errno);
    return error_;
  }

  Status Close() override {
    if (fd_ < 0) return Closed();
    Status s = FlushBuffer();
    // close(2) releases the descriptor even when it reports an error, so it
    // is never retried and never skipped.
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0 && s.ok()) s = PosixError("close", path(), errno);
    return s;
  }

 private:
  Status Closed() const { return FailedPrecondition(path() + ": written after Close"); }

  Status FlushBuffer() {
    Status s = WriteAll(buffer_);
    buffer_.clear();
    return s;
  }

  // After a failed write the file's contents are unknown: every later call
  // reports the first failure rather than pretend the rest went well.
  Status WriteAll(std::string_view data) {
    if (!error_.ok()) return error_;
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = PosixError("write", path(), errno);
        return error_;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  int fd_;
  std::string buffer_;
  Status error_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : SequentialFile(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  Status Read(size_t n, std::string_view* result, char* scratch) override {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, scratch + got, n - got);
      if (r < 0) {
        if (errno == EINTR) continue;
        return PosixError("read", path(), errno);
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    *result = std::string_view(scratch, got);
    return Status::Ok();
  }

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                         int mode) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return PosixError("cannot create", path, errno);
    *out = std::make_unique<PosixWritableFile>(path, fd);
    return Status::Ok();
  }

  Status NewSequentialFile(const std::string& path, std::unique_ptr<SequentialFile>* out) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open", path, errno);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    *out = std::make_unique<PosixSequentialFile>(path, fd);
    return Status::Ok();
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Status FileSize(const std::string& path, uint64_t* bytes) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("cannot stat", path, errno);
    *bytes = static_cast<uint64_t>(st.st_size);
    return Status::Ok();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("cannot rename " + from + " to", to, errno);
    }
    return Status::Ok();
  }

  Status RenameExchange(const std::string& a, const std::string& b) override {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) {
      return Status::Ok();
    }
    const int err = errno;
    // EINVAL: the filesystem has no exchange; ENOSYS: the kernel predates it.
    if (err == EINVAL || err == ENOSYS) {
      return Unimplemented("cannot swap " + a + " and " + b +
                           " in one step (renameat2 RENAME_EXCHANGE): " + std::strerror(err));
    }
    return PosixError("cannot swap " + a + " and", b, err);
  }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0) return PosixError("cannot create folder", path, errno);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& path) override {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) return PosixError("cannot create folder", path, ec.value());
    if (!fs::is_directory(path, ec)) return PosixError("cannot create folder", path, ENOTDIR);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("cannot remove", path, errno);
    return Status::Ok();
  }

  Status RemoveAll(const std::string& path) override {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) return PosixError("cannot remove", path, ec.value());
    return Status::Ok();
  }

  Status ListDir(const std::string& path, std::vector<std::string>* names) override {
    names->clear();
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return PosixError("cannot list", path, errno);
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names->push_back(n);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return PosixError("cannot list", path, err);
    return Status::Ok();
  }

  Status SyncDir(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open folder", path, errno);
    Status s;
    if (::fsync(fd) != 0) s = PosixError("fsync of folder", path, errno);
    ::close(fd);
    return s;
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv;
  return env;
}

Status Env::ReadFile(const std::string& path, std::string* contents) {
  contents->clear();
  std::unique_ptr<SequentialFile> file;
  Status s = NewSequentialFile(path, &file);
  if (!s.ok()) return s;
  constexpr size_t kChunk = 1 << 20;
  std::string scratch(kChunk, '\0');
  while (true) {
    std::string_view piece;
    s = file->Read(kChunk, &piece, scratch.data());
    if (!s.ok()) return s;
    contents->append(piece.data(), piece.size());
    if (piece.size() < kChunk) return Status::Ok();
  }
}

std::string ParentDir(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::string parent = fs::path(p).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace deepfm

// The filesystem seam (DESIGN §9, after leveldb's Env): checkpoint and
// manifest I/O go through an Env, so tests can wrap the real one and inject a
// short write, ENOSPC, a failed fsync or rename, or a crash between any two
// steps (tests/support/fault_env.h).
//
// Every error is a Status whose message names the path and the system's
// reason (strerror), so a caller can pass it on as it is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace deepfm {

// A file being written from the start, for streaming many small pieces.
// Appends are buffered; Sync makes everything appended so far durable. Not
// thread-safe.
class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes the file if Close was not called (errors ignored)
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;

  virtual Status Append(std::string_view data) = 0;
  // Writes out buffered data and fsyncs the file. The directory entry of a
  // new file is durable only after Env::SyncDir on its folder.
  virtual Status Sync() = 0;
  // Writes out buffered data and releases the descriptor, which is released
  // even when this fails. Later calls fail.
  virtual Status Close() = 0;
  const std::string& path() const { return path_; }

 protected:
  explicit WritableFile(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

// A file read from the start in order.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  SequentialFile(const SequentialFile&) = delete;
  SequentialFile& operator=(const SequentialFile&) = delete;

  // Reads up to `n` bytes into `scratch` (which must hold n) and points
  // *result at them. Fewer than n bytes means the end of the file; an empty
  // result, that it was reached already.
  virtual Status Read(size_t n, std::string_view* result, char* scratch) = 0;
  const std::string& path() const { return path_; }

 protected:
  explicit SequentialFile(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX filesystem. Never deleted.
  static Env* Default();

  // Creates `path` (or truncates it) with permission bits `mode` (a new file
  // only; an existing one keeps its mode).
  virtual Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                                 int mode = 0644) = 0;
  // NotFound when `path` does not exist.
  virtual Status NewSequentialFile(const std::string& path,
                                   std::unique_ptr<SequentialFile>* out) = 0;
  // The whole file; NotFound when it does not exist.
  virtual Status ReadFile(const std::string& path, std::string* contents);

  virtual bool FileExists(const std::string& path) = 0;  // a file or a folder
  virtual Status FileSize(const std::string& path, uint64_t* bytes) = 0;

  // rename(2): `to` is replaced when it is a file (or an empty folder).
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Swaps two existing paths in one step (renameat2 RENAME_EXCHANGE), so
  // neither name is ever missing. Code::kUnimplemented when the kernel or
  // the filesystem cannot; nothing changed then, and the caller decides how
  // to do without.
  virtual Status RenameExchange(const std::string& a, const std::string& b) = 0;

  // AlreadyExists when `path` exists: two callers never both get one folder.
  virtual Status CreateDir(const std::string& path) = 0;
  // Creates `path` and any missing parents; OK when it exists as a folder.
  virtual Status CreateDirs(const std::string& path) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Removes a file or a folder tree; OK when `path` does not exist.
  virtual Status RemoveAll(const std::string& path) = 0;
  // The names (not paths) in folder `path`, without "." and "..", unsorted.
  virtual Status ListDir(const std::string& path, std::vector<std::string>* names) = 0;
  // fsyncs folder `path`, making the entries created, renamed or removed in
  // it durable.
  virtual Status SyncDir(const std::string& path) = 0;
};

// The folder part of `path` ("." for a bare name), for SyncDir after a rename.
std::string ParentDir(const std::string& path);

}  // namespace deepfm

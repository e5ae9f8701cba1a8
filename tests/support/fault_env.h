// FaultInjectionEnv: an Env for tests that wraps a real one and fails on
// purpose, after leveldb's fault_injection_test.
//
// - FailOperation(n) / FailNth(op, n): the nth operation (of any kind, or of
//   one kind) returns an error: a short write or ENOSPC for an append, EIO
//   for the rest, or "unsupported" for a RenameExchange.
// - CrashAfter(n): the process "dies" after n more operations; every later
//   one fails and changes nothing.
// - DropUnsyncedData(): what a power cut then loses. Files lose the bytes
//   appended after their last Sync; files and folders created, and renames
//   and swaps done, since the last SyncDir of their folder are undone (a file
//   a rename replaced comes back). Removals count as durable at once.
//
// Operations are everything that can fail: creating, appending, syncing,
// closing, reading, renaming, swapping, creating folders, syncing folders,
// removing, listing and sizing. FileExists is not one (it cannot fail).
// Single-threaded, like the commit it tests.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/env.h"

namespace deepfm::testing_util {

class FaultInjectionEnv : public Env {
 public:
  enum class Op {
    kCreateFile,
    kAppend,
    kSyncFile,
    kCloseFile,
    kOpenRead,
    kRead,
    kSize,
    kRename,
    kExchange,
    kCreateDir,
    kSyncDir,
    kRemove,
    kList,
  };
  enum class Fault {
    kError,        // EIO (appends write nothing)
    kShortWrite,   // an append writes half its bytes, then fails with EIO
    kNoSpace,      // ENOSPC; an append writes nothing
    kUnsupported,  // a RenameExchange says the filesystem cannot swap
  };

  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // The nth operation from now (1-based, any kind) fails with `fault`.
  void FailOperation(int n, Fault fault = Fault::kError) {
    fail_at_ = operations_ + n;
    fail_fault_ = fault;
  }
  // The nth operation of kind `op` from now fails with `fault`.
  void FailNth(Op op, int n, Fault fault = Fault::kError) {
    fail_kind_ = op;
    fail_kind_at_ = kind_count_[op] + n;
    fail_kind_fault_ = fault;
  }
  // Operations after the next n fail, and change nothing.
  void CrashAfter(int n) { crash_at_ = operations_ + n; }
  void ClearFaults() {
    fail_at_ = fail_kind_at_ = crash_at_ = -1;
    fail_kind_.reset();
  }

  int operations() const { return operations_; }
  bool crashed() const { return crash_at_ >= 0 && operations_ > crash_at_; }
  // Whether a planned failure or the crash has happened.
  bool injected() const { return injected_ || crashed(); }
  // "op path" of every operation so far, for naming the one that failed.
  const std::vector<std::string>& log() const { return log_; }

  // Makes the filesystem look as it would after a power cut now (see above).
  void DropUnsyncedData() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& [path, f] : files_) {
      if (fs::is_regular_file(path, ec) && fs::file_size(path, ec) > f.synced) {
        fs::resize_file(path, f.synced, ec);
      }
    }
    while (!journal_.empty()) {
      Entry e = journal_.back();
      journal_.pop_back();
      switch (e.kind) {
        case Entry::kCreated:
          fs::remove_all(e.a, ec);
          break;
        case Entry::kRenamed:
          if (fs::exists(e.b, ec)) fs::rename(e.b, e.a, ec);
          Move(e.b, e.a);
          if (e.replaced) std::ofstream(e.b, std::ios::binary | std::ios::trunc) << *e.replaced;
          break;
        case Entry::kExchanged:
          base_->RenameExchange(e.a, e.b);
          Swap(e.a, e.b);
          break;
      }
    }
    files_.clear();
  }

  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* out,
                         int mode = 0644) override {
    Status s = Begin(Op::kCreateFile, path);
    if (!s.ok()) return s;
    const bool existed = base_->FileExists(path);
    std::unique_ptr<WritableFile> file;
    s = base_->NewWritableFile(path, &file, mode);
    if (!s.ok()) return s;
    if (!existed) journal_.push_back(Entry{Entry::kCreated, path, "", {ParentDir(path)}, {}});
    files_[path] = FileState{};
    *out = std::make_unique<File>(this, path, std::move(file));
    return Status::Ok();
  }

  Status NewSequentialFile(const std::string& path, std::unique_ptr<SequentialFile>* out) override {
    Status s = Begin(Op::kOpenRead, path);
    if (!s.ok()) return s;
    std::unique_ptr<SequentialFile> file;
    s = base_->NewSequentialFile(path, &file);
    if (!s.ok()) return s;
    *out = std::make_unique<Reader>(this, path, std::move(file));
    return Status::Ok();
  }

  bool FileExists(const std::string& path) override { return base_->FileExists(path); }

  Status FileSize(const std::string& path, uint64_t* bytes) override {
    Status s = Begin(Op::kSize, path);
    return s.ok() ? base_->FileSize(path, bytes) : s;
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    Status s = Begin(Op::kRename, from + " -> " + to);
    if (!s.ok()) return s;
    std::optional<std::string> replaced;
    if (std::filesystem::is_regular_file(to)) {
      std::string old;
      if (base_->ReadFile(to, &old).ok()) replaced = old;
    }
    s = base_->RenameFile(from, to);
    if (!s.ok()) return s;
    Move(from, to);
    journal_.push_back(
        Entry{Entry::kRenamed, from, to, {ParentDir(from), ParentDir(to)}, std::move(replaced)});
    return Status::Ok();
  }

  Status RenameExchange(const std::string& a, const std::string& b) override {
    Status s = Begin(Op::kExchange, a + " <-> " + b);
    if (!s.ok()) return s;
    s = base_->RenameExchange(a, b);
    if (!s.ok()) return s;
    Swap(a, b);
    journal_.push_back(Entry{Entry::kExchanged, a, b, {ParentDir(a), ParentDir(b)}, {}});
    return Status::Ok();
  }

  Status CreateDir(const std::string& path) override {
    Status s = Begin(Op::kCreateDir, path);
    if (!s.ok()) return s;
    s = base_->CreateDir(path);
    if (s.ok()) journal_.push_back(Entry{Entry::kCreated, path, "", {ParentDir(path)}, {}});
    return s;
  }

  Status CreateDirs(const std::string& path) override {
    Status s = Begin(Op::kCreateDir, path);
    if (!s.ok()) return s;
    const bool existed = base_->FileExists(path);
    s = base_->CreateDirs(path);
    // Only the last level is tracked; tests create the parents beforehand.
    if (s.ok() && !existed) {
      journal_.push_back(Entry{Entry::kCreated, path, "", {ParentDir(path)}, {}});
    }
    return s;
  }

  Status RemoveFile(const std::string& path) override {
    Status s = Begin(Op::kRemove, path);
    if (!s.ok()) return s;
    Forget(path);
    return base_->RemoveFile(path);
  }

  Status RemoveAll(const std::string& path) override {
    Status s = Begin(Op::kRemove, path);
    if (!s.ok()) return s;
    Forget(path);
    return base_->RemoveAll(path);
  }

  Status ListDir(const std::string& path, std::vector<std::string>* names) override {
    Status s = Begin(Op::kList, path);
    return s.ok() ? base_->ListDir(path, names) : s;
  }

  Status SyncDir(const std::string& path) override {
    Status s = Begin(Op::kSyncDir, path);
    if (!s.ok()) return s;
    s = base_->SyncDir(path);
    if (!s.ok()) return s;
    const std::string dir = Normal(path);
    for (Entry& e : journal_) e.pending_dirs.erase(dir);
    std::vector<Entry> still;
    for (Entry& e : journal_) {
      if (!e.pending_dirs.empty()) still.push_back(std::move(e));
    }
    journal_ = std::move(still);
    return Status::Ok();
  }

 private:
  struct FileState {
    uint64_t appended = 0;
    uint64_t synced = 0;
  };
  // A change to a folder's entries that a power cut would undo until that
  // folder is synced.
  struct Entry {
    enum Kind { kCreated, kRenamed, kExchanged } kind;
    std::string a, b;
    std::set<std::string> pending_dirs;
    std::optional<std::string> replaced;  // the contents of the file a rename replaced
  };

  class File : public WritableFile {
   public:
    File(FaultInjectionEnv* env, const std::string& path, std::unique_ptr<WritableFile> base)
        : WritableFile(path), env_(env), base_(std::move(base)) {}
    Status Append(std::string_view data) override {
      Fault fault = Fault::kError;
      Status s = env_->Begin(Op::kAppend, path(), &fault);
      if (!s.ok()) {
        if (fault == Fault::kShortWrite && !env_->crashed()) {
          const std::string_view half = data.substr(0, data.size() / 2);
          if (base_->Append(half).ok()) env_->Appended(path(), half.size());
        }
        return s;
      }
      s = base_->Append(data);
      if (s.ok()) env_->Appended(path(), data.size());
      return s;
    }
    Status Sync() override {
      Status s = env_->Begin(Op::kSyncFile, path());
      if (!s.ok()) return s;
      s = base_->Sync();
      if (s.ok()) env_->Synced(path());
      return s;
    }
    Status Close() override {
      Status s = env_->Begin(Op::kCloseFile, path());
      // A failed close still releases the file, as close(2) does.
      Status c = base_->Close();
      return s.ok() ? c : s;
    }

   private:
    FaultInjectionEnv* env_;
    std::unique_ptr<WritableFile> base_;
  };

  class Reader : public SequentialFile {
   public:
    Reader(FaultInjectionEnv* env, const std::string& path, std::unique_ptr<SequentialFile> base)
        : SequentialFile(path), env_(env), base_(std::move(base)) {}
    Status Read(size_t n, std::string_view* result, char* scratch) override {
      Status s = env_->Begin(Op::kRead, path());
      return s.ok() ? base_->Read(n, result, scratch) : s;
    }

   private:
    FaultInjectionEnv* env_;
    std::unique_ptr<SequentialFile> base_;
  };

  static const char* OpName(Op op) {
    static const char* const kNames[] = {"create",    "append", "fsync",  "close", "open",
                                         "read",      "size",   "rename", "swap",  "mkdir",
                                         "fsync-dir", "remove", "list"};
    return kNames[static_cast<int>(op)];
  }

  // Counts one operation and decides whether it fails; *fault says how.
  Status Begin(Op op, const std::string& what, Fault* fault = nullptr) {
    ++operations_;
    const int nth_of_kind = ++kind_count_[op];
    log_.push_back(std::string(OpName(op)) + " " + what);
    if (crash_at_ >= 0 && operations_ > crash_at_) {
      return Internal(std::string("injected crash: ") + OpName(op) + " " + what + " not done");
    }
    std::optional<Fault> f;
    if (operations_ == fail_at_) f = fail_fault_;
    if (fail_kind_ == op && nth_of_kind == fail_kind_at_) f = fail_kind_fault_;
    if (!f) return Status::Ok();
    injected_ = true;
    if (fault != nullptr) *fault = *f;
    if (*f == Fault::kUnsupported && op == Op::kExchange) {
      return Unimplemented("injected: " + what + ": " + std::strerror(EINVAL));
    }
    const int err = *f == Fault::kNoSpace ? ENOSPC : EIO;
    return Internal(std::string("injected: ") + OpName(op) + " " + what + ": " +
                    std::strerror(err));
  }

  void Appended(const std::string& path, uint64_t n) { files_[path].appended += n; }
  void Synced(const std::string& path) { files_[path].synced = files_[path].appended; }

  static std::string Normal(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
  }
  // `path` with prefix `from` replaced by `to`, if it has that prefix.
  static bool Rebase(std::string* path, const std::string& from, const std::string& to) {
    if (*path == from) {
      *path = to;
      return true;
    }
    if (path->size() > from.size() && path->compare(0, from.size(), from) == 0 &&
        (*path)[from.size()] == '/') {
      *path = to + path->substr(from.size());
      return true;
    }
    return false;
  }
  // Everything tracked under `from` now lives under `to`.
  void Move(const std::string& from, const std::string& to) {
    Relabel([&](std::string* p) { Rebase(p, Normal(from), Normal(to)); });
  }
  void Swap(const std::string& a, const std::string& b) {
    const std::string marker = Normal(a) + "\x01swap";
    Relabel([&](std::string* p) {
      if (!Rebase(p, Normal(a), marker)) Rebase(p, Normal(b), Normal(a));
    });
    Relabel([&](std::string* p) { Rebase(p, marker, Normal(b)); });
  }
  template <typename F>
  void Relabel(F f) {
    std::map<std::string, FileState> files;
    for (auto& [path, state] : files_) {
      std::string p = path;
      f(&p);
      files[p] = state;
    }
    files_ = std::move(files);
    for (Entry& e : journal_) {
      f(&e.a);
      if (!e.b.empty()) f(&e.b);
      std::set<std::string> dirs;
      for (std::string d : e.pending_dirs) {
        f(&d);
        dirs.insert(d);
      }
      e.pending_dirs = std::move(dirs);
    }
  }
  void Forget(const std::string& path) {
    for (auto it = files_.begin(); it != files_.end();) {
      std::string p = it->first;
      it = Rebase(&p, Normal(path), Normal(path)) ? files_.erase(it) : std::next(it);
    }
  }

  Env* const base_;
  int operations_ = 0;
  std::map<Op, int> kind_count_;
  std::vector<std::string> log_;
  int fail_at_ = -1;
  Fault fail_fault_ = Fault::kError;
  std::optional<Op> fail_kind_;
  int fail_kind_at_ = -1;
  Fault fail_kind_fault_ = Fault::kError;
  int crash_at_ = -1;
  bool injected_ = false;
  std::map<std::string, FileState> files_;  // written through this env, by current path
  std::vector<Entry> journal_;              // oldest first
};

}  // namespace deepfm::testing_util

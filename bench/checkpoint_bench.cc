// Checkpoint costs of one shard, in-process (issue 11's closing figures):
//   1. build: one shard (shard 0 of 1) filled to --rows rows by numbered
//      pushes of generated keys; build time and table bytes per row;
//   2. stall: --pushers threads push random existing keys (Shard::Push, one
//      numbered step each) for a window, then while one save runs
//      (Shard::Cut -> SaveShard(force_cut=false) into dir/ckpt-S.tmp ->
//      manifest + CommitCheckpoint, as the chief's Checkpointer does), then
//      for a window after it; push throughput and latency per window, the
//      cut's hold, the longest stripe lock hold, the save's wall time and
//      MB/s, and the stall per save in ms per million rows (defined below);
//   3. the save's peak extra memory: VmHWM after resetting it through
//      /proc/self/clear_refs, and VmRSS sampled every 10 ms (alone when the
//      reset is refused); then the same save with nothing pushing, for the
//      save's own time and memory;
//   4. restore: RestoreShard into a fresh shard, first with the file evicted
//      from the page cache, then with it cached; time, MB/s, CPU, peak extra
//      memory the same way.
// Prints figures; not a test: nothing here checks a result.
//
// Stall per save. Let R be the pushers' combined rate (keys/s) without a
// save (the windows before and after it together), T the save's wall time
// (from the Cut call to the end of CommitCheckpoint) and K the keys of the
// pushes that completed during T. At rate R those pushes would have taken
// K / R; the save cost training
//     stall = T - K / R            (seconds of training at full rate lost)
// and the stall per save is stall / (rows in the table / 1e6), in ms per
// million rows. It counts every cause together: the cut's hold, stripe
// locks held while a stripe is copied, the copy-on-write work pushes do,
// and the CPU the save thread takes from the pushers (with 2 pushers on a
// 2-core machine this last one weighs most; the save thread's CPU time and
// each window's CPU use, this process's and everyone else's, are printed).
#include <fcntl.h>
#include <gflags/gflags.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/checkpoint_manifest.h"
#include "common/hash.h"
#include "common/malloc_tuning.h"
#include "common/timing.h"
#include "ps/checkpoint.h"
#include "ps/shard.h"

DEFINE_int64(rows, 10000000, "rows in the table");
DEFINE_int32(dim, 17, "embedding dimension of the table");
DEFINE_string(optimizer, "adamasync", "sgd, adam, adamasync, adagrad or adagraddecay");
DEFINE_int32(pushers, 2, "threads pushing random existing keys during the stall measurement");
DEFINE_int32(keys_per_push, 10000, "keys per push, in the build and in the stall measurement");
DEFINE_string(dir, "",
              "scratch folder for the checkpoint (default /tmp/checkpoint_bench.<pid>); it must "
              "not exist or be empty, and is removed at the end");
DEFINE_double(window_seconds, 3.0,
              "length of the baseline window and of the window after the save");
DEFINE_double(warmup_seconds, 0.5, "pushing before the baseline window starts, not counted");
DEFINE_bool(cold_restore, true,
            "evict the checkpoint file from the page cache (posix_fadvise DONTNEED) before the "
            "restore, so it reads from the disk");

namespace deepfm::ps {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double ProcessCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Busy CPU seconds of the whole machine (every process), from /proc/stat.
double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / sysconf(_SC_CLK_TCK);
}

std::string FirstLineWith(const char* path, const char* prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

void PrintMachine() {
  std::string model = FirstLineWith("/proc/cpuinfo", "model name");
  if (auto p = model.find(':'); p != std::string::npos) model = model.substr(p + 2);
  int processors = 0;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) processors += line.rfind("processor", 0) == 0;
  }
  std::string mem = FirstLineWith("/proc/meminfo", "MemTotal:");
  std::string load;
  std::getline(std::ifstream("/proc/loadavg") >> std::ws, load);
  utsname u{};
  uname(&u);
  printf("machine: %s; %d processors in /proc/cpuinfo, %u hw threads usable; %s; kernel %s\n",
         model.c_str(), processors, std::thread::hardware_concurrency(), mem.c_str(), u.release);
  printf("load average at start: %s\n", load.c_str());
}

// ---- Memory: VmRSS and VmHWM of this process, in KiB.

long StatusKb(const char* field) {
  std::string line = FirstLineWith("/proc/self/status", field);
  return line.empty() ? -1 : std::atol(line.c_str() + std::strlen(field));
}
long RssKb() { return StatusKb("VmRSS:"); }
long HwmKb() { return StatusKb("VmHWM:"); }

// Resets VmHWM to the current RSS (Linux >= 4.0: "5" to clear_refs).
bool ResetPeak() {
  const int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return false;
  const bool ok = write(fd, "5", 1) == 1;
  close(fd);
  // The reset took when the peak is back near the current RSS.
  return ok && HwmKb() <= RssKb() + 1024;
}

// The extra memory of one phase: VmHWM after a reset when the kernel allows
// it, and VmRSS sampled every 10 ms in any case.
class PeakMeter {
 public:
  void Begin() {
    base_kb_ = RssKb();
    reset_ok_ = ResetPeak();
    max_sampled_kb_ = base_kb_;
    stop_ = false;
    sampler_ = std::thread([this] {
      while (!stop_.load()) {
        max_sampled_kb_ = std::max(max_sampled_kb_.load(), RssKb());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  void End() {
    stop_ = true;
    sampler_.join();
    max_sampled_kb_ = std::max(max_sampled_kb_.load(), RssKb());
    hwm_kb_ = HwmKb();
    end_kb_ = RssKb();
  }
  // The best figure: the peak from VmHWM, else the sampled one (MiB).
  double PeakExtraMiB() const {
    return ((reset_ok_ ? hwm_kb_ : max_sampled_kb_.load()) - base_kb_) / 1024.0;
  }
  void Print(const char* what, double compare_bytes, const char* compare_name) const {
    printf("  %s memory: RSS before %.0f MiB, after %.0f MiB\n", what, base_kb_ / 1024.0,
           end_kb_ / 1024.0);
    if (reset_ok_) {
      printf("  peak extra (VmHWM after clear_refs reset):   %8.0f MiB\n",
             (hwm_kb_ - base_kb_) / 1024.0);
    } else {
      printf(
          "  peak extra: writing 5 to /proc/self/clear_refs failed, so no VmHWM reset; "
          "sampled VmRSS only\n");
    }
    printf("  peak extra (VmRSS sampled every 10 ms):      %8.0f MiB\n",
           (max_sampled_kb_.load() - base_kb_) / 1024.0);
    printf("  peak extra / %s (%.0f MiB): %.3f\n", compare_name, compare_bytes / 1048576.0,
           PeakExtraMiB() * 1048576.0 / compare_bytes);
  }

 private:
  long base_kb_ = 0, hwm_kb_ = 0, end_kb_ = 0;
  bool reset_ok_ = false;
  std::atomic<long> max_sampled_kb_{0};
  std::atomic<bool> stop_{false};
  std::thread sampler_;
};

// ---- The shard.

ShardOptions MakeOptions(OptimizerType type) {
  ShardOptions o;
  o.shard_index = 0;
  o.num_shards = 1;
  o.optimizer.type = type;
  return o;
}

uint64_t RowKey(uint64_t i) { return Mix64(i); }  // a bijection: rows are distinct

PushRequest MakePush(int n, int dim) {
  PushRequest p;
  p.set_increment_global_step(1);  // shard 0 numbers every push
  auto* sg = p.add_sparse();
  sg->set_table_id(0);
  sg->mutable_keys()->resize(static_cast<size_t>(n) * 8);
  std::vector<float> g(static_cast<size_t>(n) * dim, 1e-3f);
  AssignBytes(g.data(), g.size(), sg->mutable_grads());
  return p;
}

void SetKey(PushRequest* p, int i, uint64_t key) {
  std::memcpy(p->mutable_sparse(0)->mutable_keys()->data() + static_cast<size_t>(i) * 8, &key, 8);
}

// ---- Pushers.

struct PushRecord {
  Clock::time_point start, end;
  int keys;
};

struct Window {
  explicit Window(const char* n) : name(n) {}
  const char* name;
  Clock::time_point from, to;
  size_t pushes = 0;
  double keys = 0;
  std::vector<double> latency_ms;
  double cpu_s = 0;    // this process's CPU time in the window
  double other_s = 0;  // CPU time of every other process on the machine in the window
  double seconds() const { return Seconds(from, to); }
  double keys_per_s() const { return keys / seconds(); }
};

void Classify(const std::vector<std::vector<PushRecord>>& records, Window* w) {
  for (const auto& thread : records) {
    for (const PushRecord& r : thread) {
      if (r.end < w->from || r.end >= w->to) continue;
      ++w->pushes;
      w->keys += r.keys;
      w->latency_ms.push_back(std::chrono::duration<double, std::milli>(r.end - r.start).count());
    }
  }
  std::sort(w->latency_ms.begin(), w->latency_ms.end());
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()));
  return sorted[i];
}

void PrintWindow(const Window& w) {
  printf(
      "  %-22s %6.2f s %7zu pushes %8.1f pushes/s %7.3f Mkeys/s   latency ms p50 %7.2f p99 "
      "%7.2f max %7.2f   CPU: this process %.2f cores, others %.2f\n",
      w.name, w.seconds(), w.pushes, w.pushes / w.seconds(), w.keys_per_s() / 1e6,
      Percentile(w.latency_ms, 0.5), Percentile(w.latency_ms, 0.99),
      w.latency_ms.empty() ? 0.0 : w.latency_ms.back(), w.cpu_s / w.seconds(),
      w.other_s / w.seconds());
}

// One save as the chief's Checkpointer does it: Cut on shard 0, the shard
// writes its snapshot into dir/ckpt-S.tmp (SaveShard, force_cut=false: the
// cut was taken in order), then the manifest and CommitCheckpoint.
struct SaveRun {
  Status status;
  int64_t step = 0;
  SaveShardResult res;
  Clock::time_point start, cut_done, written, end;
  double thread_cpu_s = 0;  // the saving thread's CPU time
  double seconds() const { return Seconds(start, end); }
};

SaveRun SaveOnce(Shard* shard, const fs::path& dir, OptimizerType type) {
  SaveRun run;
  const double cpu0 = ThreadCpuSeconds();
  run.start = Clock::now();
  CutResponse cut;
  run.status = shard->Cut(&cut);
  run.cut_done = Clock::now();
  run.step = cut.global_step();
  const fs::path tmp = dir / (CheckpointFolderName(run.step) + ".tmp");
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (run.status.ok()) {
    SaveShardOptions so;
    so.force_cut = false;
    run.status = SaveShard(*shard, tmp.string(), run.step, &run.res, so);
  }
  run.written = Clock::now();
  if (run.status.ok()) {
    Manifest m;
    m.global_step = run.step;
    m.num_shards = 1;
    m.num_slots = shard->router().num_slots();
    m.optimizer = OptimizerName(type);
    m.batch_size = FLAGS_keys_per_push;
    m.num_workers = FLAGS_pushers;
    m.files.push_back(run.res.file);
    run.status = CommitCheckpoint(dir.string(), tmp.string(), m, /*keep_max=*/0);
  }
  run.end = Clock::now();
  run.thread_cpu_s = ThreadCpuSeconds() - cpu0;
  return run;
}

int Run() {
  OptimizerType type;
  Status s = ParseOptimizerType(FLAGS_optimizer, &type);
  if (!s.ok()) {
    fprintf(stderr, "--optimizer: %s\n", s.ToString().c_str());
    return 2;
  }
  if (FLAGS_rows < FLAGS_keys_per_push || FLAGS_keys_per_push < 1 || FLAGS_pushers < 1 ||
      FLAGS_dim < 1) {
    fprintf(stderr, "need --rows >= --keys_per_push >= 1, --pushers >= 1, --dim >= 1\n");
    return 2;
  }
  const fs::path dir = FLAGS_dir.empty() ? fs::temp_directory_path() /
                                               ("checkpoint_bench." + std::to_string(getpid()))
                                         : fs::path(FLAGS_dir);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    fprintf(stderr, "--dir %s exists and is not empty; refusing to use (and then remove) it\n",
            dir.c_str());
    return 2;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 2;
  }
  // The scratch folder goes on every way out.
  struct RemoveAtExit {
    fs::path dir;
    ~RemoveAtExit() {
      std::error_code ec;
      fs::remove_all(dir, ec);
      if (ec) printf("could not remove %s: %s\n", dir.c_str(), ec.message().c_str());
    }
  } remove_at_exit{dir};
  // The ps task runs with this malloc tuning; the figures should be its.
  TuneMallocForLargeBuffers();

  PrintMachine();
  printf("checkpoint_bench: %lld rows, dim %d, %s, %d pushers, %d keys per push, scratch %s\n",
         static_cast<long long>(FLAGS_rows), FLAGS_dim, FLAGS_optimizer.c_str(), FLAGS_pushers,
         FLAGS_keys_per_push, dir.c_str());

  // ---- 1. Build.
  std::unique_ptr<Shard> shard = Shard::Create(MakeOptions(type), &s);
  if (!shard) {
    fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  {
    RegisterTableRequest req;
    req.mutable_spec()->set_name("emb");
    req.mutable_spec()->set_dim(FLAGS_dim);
    req.mutable_spec()->set_init_stddev(0.01f);
    RegisterTableResponse resp;
    s = shard->RegisterTable(req, &resp);
    if (!s.ok()) {
      fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  EmbeddingTable* table = shard->table(0);
  const long rss_empty_kb = RssKb();
  {
    Stopwatch sw;
    PushRequest p = MakePush(FLAGS_keys_per_push, FLAGS_dim);
    for (int64_t k = 0; k < FLAGS_rows; k += FLAGS_keys_per_push) {
      const int n = static_cast<int>(std::min<int64_t>(FLAGS_keys_per_push, FLAGS_rows - k));
      if (n != FLAGS_keys_per_push) p = MakePush(n, FLAGS_dim);
      for (int i = 0; i < n; ++i) SetKey(&p, i, RowKey(k + i));
      PushResponse r;
      s = shard->Push(p, &r);
      if (!s.ok()) {
        fprintf(stderr, "build push failed: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    const double secs = sw.Seconds();
    const size_t bytes = table->MemoryBytes();
    printf(
        "\n1. build (1 thread, numbered pushes of %d new keys): %zu rows in %.2f s "
        "(%.2f M rows/s), global step %lld\n",
        FLAGS_keys_per_push, table->size(), secs, table->size() / secs / 1e6,
        static_cast<long long>(shard->global_step()));
    printf(
        "  table: %.1f MiB, %.1f bytes/row (row: %d meta + %d values + %d optimizer floats = %d "
        "bytes; snapshot record %zu bytes); process RSS grew %.1f MiB\n",
        bytes / 1048576.0, static_cast<double>(bytes) / table->size(), 2, FLAGS_dim,
        table->slot_floats(), 4 * (2 + FLAGS_dim + table->slot_floats()), table->record_bytes(),
        (RssKb() - rss_empty_kb) / 1024.0);
  }
  const double table_bytes = static_cast<double>(table->MemoryBytes());
  const double million_rows = static_cast<double>(table->size()) / 1e6;

  // ---- 2 and 3. Stall and the save's memory.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> push_errors{0};
  std::vector<std::vector<PushRecord>> records(FLAGS_pushers);
  std::vector<std::thread> pushers;
  for (int t = 0; t < FLAGS_pushers; ++t) {
    pushers.emplace_back([&, t] {
      records[t].reserve(1 << 20);
      PushRequest p = MakePush(FLAGS_keys_per_push, FLAGS_dim);
      uint64_t rng = Mix64(0x5eed + t);
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < FLAGS_keys_per_push; ++i) {
          rng = Mix64(rng + 0x9e3779b97f4a7c15ULL);
          SetKey(&p, i, RowKey(rng % static_cast<uint64_t>(FLAGS_rows)));
        }
        PushResponse r;
        const auto start = Clock::now();
        Status st = shard->Push(p, &r);
        const auto end = Clock::now();
        if (!st.ok()) {
          if (push_errors.fetch_add(1) == 0)
            fprintf(stderr, "push failed: %s\n", st.ToString().c_str());
          continue;
        }
        records[t].push_back({start, end, FLAGS_keys_per_push});
      }
    });
  }
  const auto window = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(FLAGS_window_seconds));
  const auto pushing_since = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_warmup_seconds));
  Window before("no save (before)"), during("during the save"), after("no save (after)");
  before.from = Clock::now();
  double cpu0 = ProcessCpuSeconds(), busy0 = MachineBusySeconds();
  std::this_thread::sleep_for(window);
  before.to = Clock::now();
  before.cpu_s = ProcessCpuSeconds() - cpu0;
  before.other_s = MachineBusySeconds() - busy0 - before.cpu_s;

  PeakMeter save_mem;
  save_mem.Begin();
  cpu0 = ProcessCpuSeconds();
  busy0 = MachineBusySeconds();
  const SaveRun save = SaveOnce(shard.get(), dir, type);
  during.from = save.start;
  during.to = save.end;
  during.cpu_s = ProcessCpuSeconds() - cpu0;
  during.other_s = MachineBusySeconds() - busy0 - during.cpu_s;
  save_mem.End();
  const SaveShardResult& res = save.res;
  const int64_t S = save.step;
  if (!save.status.ok()) {
    stop = true;
    for (auto& th : pushers) th.join();
    fprintf(stderr, "save failed: %s\n", save.status.ToString().c_str());
    return 1;
  }
  after.from = Clock::now();
  cpu0 = ProcessCpuSeconds();
  busy0 = MachineBusySeconds();
  std::this_thread::sleep_for(window);
  after.to = Clock::now();
  after.cpu_s = ProcessCpuSeconds() - cpu0;
  after.other_s = MachineBusySeconds() - busy0 - after.cpu_s;
  stop = true;
  for (auto& th : pushers) th.join();
  Classify(records, &before);
  Classify(records, &during);
  Classify(records, &after);

  const double save_s = during.seconds();
  const double file_mib = res.file.bytes / 1048576.0;
  printf(
      "\n2. stall: %d threads push %d random existing keys each (Shard::Push, one numbered "
      "step per push); %lld push errors\n",
      FLAGS_pushers, FLAGS_keys_per_push, static_cast<long long>(push_errors.load()));
  PrintWindow(before);
  PrintWindow(during);
  PrintWindow(after);
  {
    // The push rate second by second, warm-up included: the save runs
    // between the marks.
    std::vector<double> keys_per_second(static_cast<size_t>(Seconds(pushing_since, after.to)) + 1,
                                        0.0);
    for (const auto& thread : records) {
      for (const PushRecord& r : thread) {
        if (r.end >= after.to) continue;  // finished while the pushers were stopping
        keys_per_second[static_cast<size_t>(Seconds(pushing_since, r.end))] += r.keys;
      }
    }
    const size_t save_from = static_cast<size_t>(Seconds(pushing_since, during.from));
    const size_t save_to = static_cast<size_t>(Seconds(pushing_since, during.to));
    printf(
        "  Mkeys/s in each second since pushing began (| marks the seconds the save starts and "
        "ends in):\n   ");
    for (size_t i = 0; i + 1 < keys_per_second.size(); ++i) {  // the last second is partial
      printf("%s%.2f", i == save_from || i == save_to ? " | " : " ", keys_per_second[i] / 1e6);
    }
    printf("\n");
  }
  printf("  save of step %lld: %llu rows, %.1f MiB file\n", static_cast<long long>(S),
         static_cast<unsigned long long>(res.rows), file_mib);
  printf("  Shard::Cut call (drains in-flight pushes, then the cut): %8.2f ms\n",
         std::chrono::duration<double, std::milli>(save.cut_done - save.start).count());
  printf("  cut hold (SaveShardResult::cut_ms, pushes held back):   %8.2f ms\n", res.cut_ms);
  printf("  longest stripe lock hold (max_stripe_ms, 1 of %d stripes): %6.2f ms\n",
         table->num_stripes(), res.max_stripe_ms);
  printf("  SaveShard write (write_ms): %.2f s, %.1f MB/s\n", res.write_ms / 1e3,
         res.file.bytes / (res.write_ms / 1e3) / 1e6);
  printf("  manifest + CommitCheckpoint: %.3f s\n", Seconds(save.written, save.end));
  printf("  save wall time (Cut to committed): %.2f s, %.1f MB/s; save thread CPU %.2f s\n", save_s,
         res.file.bytes / save_s / 1e6, save.thread_cpu_s);
  printf("  keys pushed during the save: %.1f M (%.2f x the table's rows)\n", during.keys / 1e6,
         during.keys / table->size());
  // stall = T - K / R (see the top of the file); R from the windows before
  // and after the save together, which evens out a neighbour's load that
  // changes during the run. Each window alone is printed beside it.
  const double rate = (before.keys + after.keys) / (before.seconds() + after.seconds());
  const double stall_s = save_s - during.keys / rate;
  const double stall_before_s = save_s - during.keys / before.keys_per_s();
  const double stall_after_s = save_s - during.keys / after.keys_per_s();
  printf("  stall = T_save - K_save / R = %.2f s - %.2f M keys / %.3f Mkeys/s = %.0f ms\n", save_s,
         during.keys / 1e6, rate / 1e6, stall_s * 1e3);
  printf(
      "    T_save: the save's wall time (Cut to committed); K_save: keys of the pushes that "
      "completed in it;\n"
      "    R: the push rate without a save (both windows together); so the stall is the "
      "training time lost to the save\n");
  printf("  STALL PER SAVE: %.1f ms per million rows (%.0f ms / %.2f M rows)\n",
         stall_s * 1e3 / million_rows, stall_s * 1e3, million_rows);
  printf("    with R from one window only: %.1f (before), %.1f (after) ms per million rows\n",
         stall_before_s * 1e3 / million_rows, stall_after_s * 1e3 / million_rows);
  // An estimate of the part that is CPU taken from the pushers: without a
  // save they keep `cores` busy; the save thread's CPU beyond the cores left
  // idle over its wall time comes out of theirs, and each CPU second they
  // lose is 1 / cores seconds of pushing. The rest is waiting (the cut,
  // stripe locks), copy-on-write work and cache misses the save causes.
  const double cores = (before.cpu_s + after.cpu_s) / (before.seconds() + after.seconds());
  const double idle_cores = std::max(0.0, std::thread::hardware_concurrency() - cores);
  const double cpu_share_s =
      std::max(0.0, save.thread_cpu_s - idle_cores * save_s) / std::max(cores, 1e-9);
  printf(
      "    of which CPU taken: the save thread's %.2f s of CPU, less what %.2f idle cores absorb, "
      "over the %.2f cores the pushers use = about %.0f ms; the rest, %.0f ms: waits on the cut "
      "and stripe locks, copy-on-write, cache misses\n",
      save.thread_cpu_s, idle_cores, cores, cpu_share_s * 1e3, (stall_s - cpu_share_s) * 1e3);
  printf("\n3. save memory\n");
  save_mem.Print("save", table_bytes, "table bytes");
  printf(
      "  (the save's own buffers are one stripe's records, %.1f MiB; the rest is rows kept for "
      "copy-on-write while their stripe waits to be copied)\n",
      table->size() / table->num_stripes() * table->record_bytes() / 1048576.0);

  // ---- The same save with nothing pushing: the save's own time and memory.
  malloc_trim(0);
  PeakMeter quiet_mem;
  quiet_mem.Begin();
  const SaveRun quiet = SaveOnce(shard.get(), dir, type);
  quiet_mem.End();
  printf("\n3b. the same save with no pushers\n");
  if (!quiet.status.ok()) {
    printf("  save failed: %s\n", quiet.status.ToString().c_str());
  } else {
    printf(
        "  save of step %lld: %llu rows in %.2f s (Cut to committed), %.1f MB/s; SaveShard write "
        "%.2f s; save thread CPU %.2f s; longest stripe lock hold %.2f ms\n",
        static_cast<long long>(quiet.step), static_cast<unsigned long long>(quiet.res.rows),
        quiet.seconds(), quiet.res.file.bytes / quiet.seconds() / 1e6, quiet.res.write_ms / 1e3,
        quiet.thread_cpu_s, quiet.res.max_stripe_ms);
    quiet_mem.Print("save", table_bytes, "table bytes");
  }

  // ---- 4. Restore, from the file on disk and then from the page cache.
  const int64_t restore_step = quiet.status.ok() ? quiet.step : S;
  const SaveShardResult& restore_res = quiet.status.ok() ? quiet.res : res;
  const fs::path folder = dir / CheckpointFolderName(restore_step);
  const fs::path file = folder / restore_res.file.name;
  const int64_t live_step = shard->global_step();
  for (const bool cold : {true, false}) {
    if (cold && !FLAGS_cold_restore) continue;
    bool evicted = false;
    if (cold) {
      const int fd = open(file.c_str(), O_RDONLY);
      if (fd >= 0) {
        evicted = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
        close(fd);
      }
    }
    malloc_trim(0);
    PeakMeter restore_mem;
    restore_mem.Begin();
    std::unique_ptr<Shard> restored = Shard::Create(MakeOptions(type), &s);
    uint64_t rows = 0;
    const double cpu_start = ThreadCpuSeconds();
    Stopwatch rsw;
    s = RestoreShard(&restored, folder.string(), &rows);
    const double restore_s = rsw.Seconds();
    const double restore_cpu = ThreadCpuSeconds() - cpu_start;
    restore_mem.End();
    printf(
        "\n4%s. restore of step %lld (RestoreShard into a fresh shard; %.1f MiB file %s)\n",
        cold ? "a" : "b", static_cast<long long>(restore_step), restore_res.file.bytes / 1048576.0,
        cold
            ? (evicted ? "evicted from the page cache first" : "posix_fadvise failed: maybe cached")
            : "in the page cache");
    if (!s.ok()) {
      printf("  restore failed: %s\n", s.ToString().c_str());
      continue;
    }
    const EmbeddingTable* rt = restored->table(0);
    uint32_t max_last_step = 0;
    rt->ForEachRow([&](uint64_t, const float*, const float*, RowMeta meta) {
      max_last_step = std::max(max_last_step, meta.last_step);
    });
    printf(
        "  %llu rows in %.2f s: %.1f MB/s, %.2f M rows/s, CPU %.2f s; restored step %lld (live "
        "shard at %lld); newest row last_step %u\n",
        static_cast<unsigned long long>(rows), restore_s, restore_res.file.bytes / restore_s / 1e6,
        rows / restore_s / 1e6, restore_cpu, static_cast<long long>(restored->global_step()),
        static_cast<long long>(live_step), max_last_step);
    restore_mem.Print("restore", static_cast<double>(rt->MemoryBytes()), "restored table bytes");
  }
  shard.reset();
  std::string load;
  std::getline(std::ifstream("/proc/loadavg") >> std::ws, load);
  printf("\nload average at end: %s\n", load.c_str());
  return 0;
}

}  // namespace
}  // namespace deepfm::ps

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return deepfm::ps::Run();
}

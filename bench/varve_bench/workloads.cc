// The workloads: halodb, halodb-ltm, small, scan, recovery, sync. Each runs in a process of its
// own (main.cc forks), so peak RSS, /proc/self/io and the engine's caches belong to one engine.
// Processes that must start clean (reopen timing, index memory, kill -9) are forked from here
// before this process opens anything.
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "bench.h"

namespace varve_bench {
namespace {

struct Timed {
  Histogram hist;
  uint64_t ops = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // summed over the threads that ran the ops
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Runs op(thread, i) on `threads` threads until each did max_ops or `seconds` passed (0 = no
// time limit); every op is timed into one histogram per thread.
Timed RunOps(int threads, uint64_t max_ops, double seconds,
             const std::function<void(int, uint64_t)>& op) {
  std::vector<Histogram> hists(threads);
  std::vector<uint64_t> counts(threads);
  std::vector<double> cpu(threads);
  uint64_t start = NowNs();
  uint64_t deadline = seconds > 0 ? start + static_cast<uint64_t>(seconds * 1e9) : UINT64_MAX;
  auto body = [&](int t) {
    Histogram& h = hists[t];
    double cpu0 = ThreadCpuSeconds();
    uint64_t i = 0;
    for (; i < max_ops; ++i) {
      uint64_t t0 = NowNs();
      op(t, i);
      uint64_t t1 = NowNs();
      h.Record(t1 - t0);
      if (t1 >= deadline) {
        ++i;
        break;
      }
    }
    counts[t] = i;
    cpu[t] = ThreadCpuSeconds() - cpu0;
  };
  if (threads == 1) {
    body(0);
  } else {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) ts.emplace_back(body, t);
    for (auto& t : ts) t.join();
  }
  Timed r;
  r.seconds = (NowNs() - start) / 1e9;
  for (int t = 0; t < threads; ++t) {
    r.hist.Merge(hists[t]);
    r.ops += counts[t];
    r.cpu_seconds += cpu[t];
  }
  return r;
}

PhaseResult Make(const std::string& workload, const std::string& phase, Engine& e, const Timed& t) {
  PhaseResult r;
  r.workload = workload;
  r.phase = phase;
  r.engine = e.Name();
  r.settings = e.Settings();
  r.ops = t.ops;
  r.seconds = t.seconds;
  r.ops_per_s = t.seconds > 0 ? t.ops / t.seconds : 0;
  r.p50_us = t.hist.Percentile(50) / 1e3;
  r.p99_us = t.hist.Percentile(99) / 1e3;
  r.p999_us = t.hist.Percentile(99.9) / 1e3;
  if (t.ops > 0 && t.cpu_seconds > 0) r.cpu_us_per_op = t.cpu_seconds * 1e6 / t.ops;
  return r;
}

// Fork, run fn in the child, wait; the child's exit status is returned (0 = ok).
int InChild(const std::function<void()>& fn) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    fn();
    std::fflush(nullptr);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Results a child hands back through a shared anonymous mapping.
struct Shared {
  std::atomic<uint64_t> acked{0};
  double open_seconds = 0, first_get_seconds = 0;
  uint64_t rss_before = 0, rss_after = 0;
  uint64_t rss_file_before = 0, rss_file_after = 0;
  uint64_t lost = 0, checked = 0;
  int exit_code = 0;
};

Shared* MapShared() {
  void* p =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Die("mmap failed");
  return new (p) Shared();
}

// Reopens the store in a fresh process: open time, time to the first Get, RSS growth.
void Reopen(const std::string& engine, const std::string& dir, const EngineConfig& cfg,
            uint64_t check_from, uint64_t check_count, Shared* sh) {
  InChild([&] {
    auto e = MakeEngine(engine);
    sh->rss_before = RssBytes();
    sh->rss_file_before = RssFileBytes();
    uint64_t t0 = NowNs();
    e->Open(dir, cfg);
    sh->open_seconds = (NowNs() - t0) / 1e9;
    std::string key, v;
    MakeKey(0, cfg.key_bytes, &key);
    e->Get(key, &v);
    sh->first_get_seconds = (NowNs() - t0) / 1e9;
    sh->rss_after = RssBytes();
    sh->rss_file_after = RssFileBytes();
    uint64_t lost = 0;
    for (uint64_t i = 0; i < check_count; ++i) {
      MakeKey(check_from + i, cfg.key_bytes, &key);
      if (!e->Get(key, &v)) ++lost;
    }
    sh->lost = lost;
    sh->checked = check_count;
    e->Close();
  });
}

// Fill ids [0, n) in random key order, one Put each (timed).
Timed Fill(Engine& e, uint64_t n, size_t key_bytes, const ValueSource& vs, uint64_t salt) {
  std::string key;
  return RunOps(1, n, 0, [&](int, uint64_t i) {
    MakeKey(i, key_bytes, &key);
    e.Put(key, vs.Next(i + salt));
  });
}

void BulkFill(Engine& e, uint64_t n, size_t key_bytes, const ValueSource& vs) {
  std::vector<std::pair<std::string, std::string>> batch;
  std::string key;
  for (uint64_t i = 0; i < n; ++i) {
    MakeKey(i, key_bytes, &key);
    batch.emplace_back(key, std::string(vs.Next(i)));
    if (batch.size() == 1000 || i + 1 == n) {
      e.PutBatch(batch, false);
      batch.clear();
    }
  }
  e.Sync();
}

Timed Reads(Engine& e, int threads, uint64_t max_ops, double seconds, uint64_t n, uint64_t base,
            size_t key_bytes, bool expect_found, uint64_t* wrong) {
  std::atomic<uint64_t> bad{0};
  std::vector<Rng> rngs;
  for (int t = 0; t < threads; ++t) rngs.emplace_back(1000 + t + base);
  Timed r = RunOps(threads, max_ops, seconds, [&](int t, uint64_t) {
    thread_local std::string key, value;
    uint64_t id = base + rngs[t].Uniform(n);
    MakeKey(id, key_bytes, &key);
    if (e.Get(key, &value) != expect_found) bad.fetch_add(1, std::memory_order_relaxed);
  });
  *wrong = bad.load();
  return r;
}

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// ---- small / halodb ----------------------------------------------------------------------

void KeyValueWorkload(const Args& a, const std::string& workload, const std::string& engine,
                      const std::string& dir, std::vector<PhaseResult>* out) {
  bool halo = workload == "halodb";
  EngineConfig cfg;
  cfg.expected_keys = halo ? a.halodb_keys : a.small_keys;
  cfg.key_bytes = halo ? a.halodb_key_bytes : a.small_key_bytes;
  cfg.value_bytes = halo ? a.halodb_value_bytes : a.small_value_bytes;
  uint64_t n = cfg.expected_keys;
  double kv = static_cast<double>(cfg.key_bytes + cfg.value_bytes);
  ValueSource vs(cfg.value_bytes);
  auto e = MakeEngine(engine);
  e->Open(dir, cfg);
  uint64_t io0 = IoWriteBytes();
  Timed t = Fill(*e, n, cfg.key_bytes, vs, 0);
  e->Sync();
  uint64_t io1 = IoWriteBytes();
  PhaseResult r = Make(workload, "fill random", *e, t);
  r.write_amp = (io1 - io0) / (n * kv);
  out->push_back(r);

  uint64_t wrong = 0;
  uint64_t reads = halo ? a.halodb_reads : n;
  t = Reads(*e, 1, reads, 0, n, 0, cfg.key_bytes, true, &wrong);
  r = Make(workload, "read random", *e, t);
  if (wrong) r.note = std::to_string(wrong) + " keys not found!";
  out->push_back(r);

  if (!halo) {
    t = Reads(*e, 1, reads, 0, n, n, cfg.key_bytes, false, &wrong);
    r = Make(workload, "read missing", *e, t);
    if (wrong) r.note = std::to_string(wrong) + " absent keys found!";
    out->push_back(r);
  }

  uint64_t mixed_writes = 0;
  if (halo) {
    // 1 writer (overwrites) + N readers, for mixed_seconds.
    std::atomic<bool> stop{false};
    Timed wt;
    std::thread writer([&] {
      std::string key;
      Rng rng(99);
      wt = RunOps(1, UINT64_MAX, a.mixed_seconds, [&](int, uint64_t i) {
        MakeKey(rng.Uniform(n), cfg.key_bytes, &key);
        e->Put(key, vs.Next(i + 7 * n));
      });
      stop = true;
    });
    t = Reads(*e, a.mixed_readers, UINT64_MAX, a.mixed_seconds, n, 0, cfg.key_bytes, true, &wrong);
    writer.join();
    mixed_writes = wt.ops;
    r = Make(workload, "mixed: " + std::to_string(a.mixed_readers) + " readers", *e, t);
    out->push_back(r);
    r = Make(workload, "mixed: 1 writer", *e, wt);
    out->push_back(r);
  }

  // Overwrite n random keys (half of all writes are then overwrites): WA counts fill + overwrite
  // and what the engine writes at close (flushes, compaction).
  uint64_t io2 = IoWriteBytes();
  Rng rng(5);
  std::string key;
  t = RunOps(1, n, 0, [&](int, uint64_t i) {
    MakeKey(rng.Uniform(n), cfg.key_bytes, &key);
    e->Put(key, vs.Next(i + 3 * n));
  });
  PhaseResult ow = Make(workload, "overwrite random", *e, t);
  e->Close();
  uint64_t io3 = IoWriteBytes();
  (void)io2;
  ow.write_amp = (io3 - io0) / ((2 * n + mixed_writes) * kv);
  ow.space_amp = DiskUsageBytes(dir) / (n * kv);
  ow.peak_rss_mb = PeakRssBytes() / 1048576.0;
  ow.note = "WA over fill + overwrite + close" +
            std::string(halo ? " (and the mixed phase's writes)" : " (50% of writes overwrite)");
  out->push_back(ow);
  for (auto& x : *out) x.peak_rss_mb = ow.peak_rss_mb;
}

// Index memory: RSS growth of a fresh process opening the store that KeyValueWorkload left.
// Runs in a child of a process that never opened an engine: forking a process whose engine
// left background threads behind (LevelDB's Env) can deadlock the copy.
void IndexMemory(const Args& a, const std::string& workload, const std::string& engine,
                 const std::string& dir, std::vector<PhaseResult>* out) {
  bool halo = workload == "halodb";
  EngineConfig cfg;
  cfg.expected_keys = halo ? a.halodb_keys : a.small_keys;
  cfg.key_bytes = halo ? a.halodb_key_bytes : a.small_key_bytes;
  cfg.value_bytes = halo ? a.halodb_value_bytes : a.small_value_bytes;
  uint64_t n = cfg.expected_keys;
  // The same opening of an empty store gives the fixed cost (libraries, threads, buffers)
  // that is not per key.
  Shared* empty = MapShared();
  std::string empty_dir = dir + "-empty";
  std::filesystem::create_directories(empty_dir);
  Reopen(engine, empty_dir, cfg, 0, 0, empty);
  RemoveTree(empty_dir);
  Shared* sh = MapShared();
  Reopen(engine, dir, cfg, 0, 0, sh);
  PhaseResult ix;
  ix.workload = workload;
  ix.phase = "reopen (index memory)";
  ix.engine = engine;
  ix.ops = 1;
  ix.seconds = sh->first_get_seconds;
  double growth = static_cast<double>(sh->rss_after) - static_cast<double>(sh->rss_before);
  double fixed = static_cast<double>(empty->rss_after) - static_cast<double>(empty->rss_before);
  ix.index_bytes_per_key = (growth - fixed) / n;
  // File pages (a segment's page-cache folio that the Get maps, code of the open path) move this
  // figure by several bytes per key at 100K keys: the anonymous part is given apart.
  auto anon = [](const Shared* x) {
    return (static_cast<double>(x->rss_after) - static_cast<double>(x->rss_file_after)) -
           (static_cast<double>(x->rss_before) - static_cast<double>(x->rss_file_before));
  };
  ix.index_anon_bytes_per_key = (anon(sh) - anon(empty)) / n;
  ix.note = "open " + Fmt("%.3f", sh->open_seconds) +
            " s; (RSS growth of a fresh process over "
            "Open + one Get) - (the same for an empty store: " +
            Fmt("%.1f", fixed / 1048576.0) + " MiB), per key; of the growth, " +
            Fmt("%.2f", (static_cast<double>(sh->rss_file_after) -
                         static_cast<double>(sh->rss_file_before)) /
                            1048576.0) +
            " MiB are mapped file pages; anonymous memory alone: " +
            Fmt("%.1f", ix.index_anon_bytes_per_key) + " B/key";
  out->push_back(ix);
}

// ---- larger than memory -------------------------------------------------------------------

bool JoinMemoryLimit(uint64_t bytes, std::string* method) {
  const std::string base = "/sys/fs/cgroup/memory";
  if (access((base + "/cgroup.procs").c_str(), W_OK) != 0) return false;
  std::string dir = base + "/varve-bench-" + std::to_string(getpid());
  if (mkdir(dir.c_str(), 0755) != 0) return false;
  {
    std::ofstream f(dir + "/memory.limit_in_bytes");
    f << bytes;
    if (!f.flush()) return false;
  }
  std::ofstream f(dir + "/cgroup.procs");
  f << getpid();
  if (!f.flush()) return false;
  *method = "cgroup v1 memory.limit_in_bytes = " + std::to_string(bytes >> 20) +
            " MiB (page cache charged), caches dropped before";
  return true;
}

// Fills a store in a child process of its own (no memory limit; fill speed is measured elsewhere).
void FillInChild(const std::string& engine, const std::string& dir, const EngineConfig& cfg,
                 uint64_t n, const std::string& what) {
  int rc = InChild([&] {
    ValueSource vs(cfg.value_bytes);
    auto e = MakeEngine(engine);
    e->Open(dir, cfg);
    BulkFill(*e, n, cfg.key_bytes, vs);
    e->Close();
  });
  if (rc != 0) Die(what + " fill failed");
}

void LtmWorkload(const Args& a, const std::string& engine, const std::string& dir,
                 std::vector<PhaseResult>* out) {
  EngineConfig cfg;
  cfg.expected_keys = a.ltm_keys;
  cfg.key_bytes = a.halodb_key_bytes;
  cfg.value_bytes = a.halodb_value_bytes;
  uint64_t n = a.ltm_keys;
  // Fill in a child without a limit (fill speed is measured by halodb).
  FillInChild(engine, dir, cfg, n, "ltm");
  bool dropped = a.drop_caches && DropCaches();
  int rc = InChild([&] {
    std::string method;
    cfg.larger_than_memory = true;
    cfg.cache_bytes = (a.ltm_memory_mb << 20) / 4;
    bool limited = JoinMemoryLimit(a.ltm_memory_mb << 20, &method);
    if (!limited)
      method =
          std::string("NO memory limit available") + (dropped ? ", caches dropped before" : "");
    auto e = MakeEngine(engine);
    e->Open(dir, cfg);
    std::vector<PhaseResult> res;
    for (int threads : {1, a.ltm_threads}) {
      uint64_t wrong = 0;
      uint64_t rb0 = IoReadBytes();
      Timed t = Reads(*e, threads, UINT64_MAX, a.ltm_seconds, n, 0, cfg.key_bytes, true, &wrong);
      uint64_t rb1 = IoReadBytes();
      PhaseResult r =
          Make("halodb-ltm",
               "read random, " + std::to_string(threads) + (threads == 1 ? " thread" : " threads"),
               *e, t);
      r.read_bytes_per_op = t.ops ? static_cast<double>(rb1 - rb0) / t.ops : 0;
      r.note = method + "; data " + Fmt("%.0f", n * (cfg.key_bytes + cfg.value_bytes) / 1048576.0) +
               " MiB" + (wrong ? "; " + std::to_string(wrong) + " keys not found!" : "");
      res.push_back(r);
    }
    e->Close();
    for (auto& r : res) r.peak_rss_mb = PeakRssBytes() / 1048576.0;
    // Hand results back through a file (the parent reads it).
    std::ofstream f(dir + ".ltm");
    for (auto& r : res)
      f << r.phase << '\t' << r.settings << '\t' << r.ops << '\t' << r.seconds << '\t' << r.p50_us
        << '\t' << r.p99_us << '\t' << r.p999_us << '\t' << r.read_bytes_per_op << '\t'
        << r.peak_rss_mb << '\t' << r.note << '\n';
  });
  std::string cg = "/sys/fs/cgroup/memory/varve-bench-";
  // The child joined a cgroup named after its own pid; remove the empty ones (rmdir fails on a
  // group that still has processes, e.g. another run's).
  std::error_code ec;
  for (auto& d : std::filesystem::directory_iterator("/sys/fs/cgroup/memory", ec)) {
    std::string p = d.path().string();
    if (p.rfind(cg, 0) == 0) rmdir(p.c_str());
  }
  if (rc != 0) Die("ltm read child failed with " + std::to_string(rc));
  std::ifstream f(dir + ".ltm");
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> c;
    size_t s = 0, p;
    while ((p = line.find('\t', s)) != std::string::npos) {
      c.push_back(line.substr(s, p - s));
      s = p + 1;
    }
    c.push_back(line.substr(s));
    if (c.size() < 10) continue;
    PhaseResult r;
    r.workload = "halodb-ltm";
    r.engine = engine;
    r.phase = c[0];
    r.settings = c[1];
    r.ops = std::stoull(c[2]);
    r.seconds = std::stod(c[3]);
    r.ops_per_s = r.seconds > 0 ? r.ops / r.seconds : 0;
    r.p50_us = std::stod(c[4]);
    r.p99_us = std::stod(c[5]);
    r.p999_us = std::stod(c[6]);
    r.read_bytes_per_op = std::stod(c[7]);
    r.peak_rss_mb = std::stod(c[8]);
    r.note = c[9];
    out->push_back(r);
  }
  std::remove((dir + ".ltm").c_str());
}

// ---- scan ---------------------------------------------------------------------------------

void ScanWorkload(const Args& a, const std::string& engine, const std::string& dir,
                  std::vector<PhaseResult>* out) {
  EngineConfig cfg;
  cfg.expected_keys = a.scan_keys;
  cfg.key_bytes = a.small_key_bytes;
  cfg.value_bytes = a.small_value_bytes;
  ValueSource vs(cfg.value_bytes);
  auto e = MakeEngine(engine);
  e->Open(dir, cfg);
  BulkFill(*e, a.scan_keys, cfg.key_bytes, vs);
  uint64_t bytes = 0, keys = 0;
  Timed t = RunOps(1, 1, 0, [&](int, uint64_t) {
    keys =
        e->Iterate([&](std::string_view k, std::string_view v) { bytes += k.size() + v.size(); });
  });
  PhaseResult r = Make("scan", "full iteration (keys/s)", *e, t);
  r.ops = keys;
  r.ops_per_s = keys / t.seconds;
  r.p50_us = r.p99_us = r.p999_us = 0;
  r.note = std::to_string(keys) + " keys" +
           (keys != a.scan_keys ? " (expected " + std::to_string(a.scan_keys) + ")!" : "");
  out->push_back(r);
  if (e->Ordered()) {
    Rng rng(11);
    std::string key;
    uint64_t got = 0;
    t = RunOps(1, a.range_scans, 0, [&](int, uint64_t) {
      MakeKey(rng.Uniform(a.scan_keys), cfg.key_bytes, &key);
      got += e->Range(key, a.range_length,
                      [&](std::string_view, std::string_view v) { bytes += v.size(); });
    });
    r = Make("scan", "range of " + std::to_string(a.range_length) + " keys (scans/s)", *e, t);
    r.note = Fmt("%.1f keys per scan", static_cast<double>(got) / std::max<uint64_t>(t.ops, 1));
    out->push_back(r);
  }
  e->Close();
  for (auto& x : *out) x.peak_rss_mb = PeakRssBytes() / 1048576.0;
}

// ---- recovery -----------------------------------------------------------------------------

void RecoveryWorkload(const Args& a, const std::string& engine, const std::string& dir,
                      std::vector<PhaseResult>* out) {
  EngineConfig cfg;
  cfg.expected_keys = a.recovery_keys;
  cfg.key_bytes = a.small_key_bytes;
  cfg.value_bytes = a.small_value_bytes;
  uint64_t n = a.recovery_keys;
  FillInChild(engine, dir, cfg, n, "recovery");
  Shared* sh = MapShared();
  auto row = [&](const std::string& phase, const std::string& note) {
    PhaseResult r;
    r.workload = "recovery";
    r.phase = phase;
    r.engine = engine;
    r.ops = 1;
    r.seconds = sh->first_get_seconds;
    r.ops_per_s = 0;
    r.index_bytes_per_key =
        (static_cast<double>(sh->rss_after) - static_cast<double>(sh->rss_before)) / n;
    r.note = "Open " + Fmt("%.3f", sh->open_seconds) + " s, + first Get " +
             Fmt("%.3f", sh->first_get_seconds) + " s" + note;
    out->push_back(r);
  };
  Reopen(engine, dir, cfg, 0, 0, sh);
  row("clean reopen, warm cache", "");
  bool dropped = a.drop_caches && DropCaches();
  Reopen(engine, dir, cfg, 0, 0, sh);
  row(dropped ? "clean reopen, caches dropped" : "clean reopen (caches NOT dropped)", "");

  // kill -9 during writes: a child writes new keys (ids n, n+1, ...) and counts acknowledged
  // ones in shared memory; it is killed once kill_after_puts are acknowledged, so that every
  // engine recovers the same writes (or after kill_after_seconds).
  sh->acked = 0;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    ValueSource vs(cfg.value_bytes);
    auto e = MakeEngine(engine);
    e->Open(dir, cfg);
    std::string key;
    for (uint64_t i = 0;; ++i) {
      MakeKey(n + i, cfg.key_bytes, &key);
      e->Put(key, vs.Next(n + i));
      sh->acked.store(i + 1, std::memory_order_release);
    }
  }
  // Wait until the writer is writing (Open done), then kill it mid-stream.
  uint64_t wait_start = NowNs();
  while (sh->acked.load() == 0 && NowNs() - wait_start < 120'000'000'000ull) usleep(1000);
  uint64_t deadline = NowNs() + static_cast<uint64_t>(a.kill_after_seconds * 1e9);
  while (sh->acked.load() < a.kill_after_puts && NowNs() < deadline) usleep(100);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  uint64_t acked = sh->acked.load();
  uint64_t check = std::min<uint64_t>(acked, 10000);
  dropped = a.drop_caches && DropCaches();
  Reopen(engine, dir, cfg, n + acked - check, check, sh);
  row(std::string("reopen after kill -9 during writes") + (dropped ? ", caches dropped" : ""),
      "; " + std::to_string(acked) + " puts acknowledged, " + std::to_string(sh->lost) +
          " of the last " + std::to_string(sh->checked) + " lost");
}

// ---- sync -----------------------------------------------------------------------------------

void SyncWorkload(const Args& a, const std::string& engine, const std::string& dir,
                  std::vector<PhaseResult>* out) {
  EngineConfig cfg;
  cfg.expected_keys = a.sync_keys;
  cfg.key_bytes = a.small_key_bytes;
  cfg.value_bytes = a.small_value_bytes;
  cfg.sync_writes = true;
  uint64_t n = a.sync_keys;
  double kv = static_cast<double>(cfg.key_bytes + cfg.value_bytes);
  ValueSource vs(cfg.value_bytes);
  auto e = MakeEngine(engine);
  e->Open(dir, cfg);
  BulkFill(*e, n, cfg.key_bytes, vs);
  // 1: every overwrite durable.
  uint64_t io0 = IoWriteBytes();
  Rng rng(3);
  std::string key;
  Timed t = RunOps(1, UINT64_MAX, a.sync_seconds, [&](int, uint64_t i) {
    MakeKey(rng.Uniform(n), cfg.key_bytes, &key);
    e->Put(key, vs.Next(i));
  });
  PhaseResult r = Make("sync", "overwrite, durable every write", *e, t);
  r.write_amp = (IoWriteBytes() - io0) / (t.ops * kv);
  out->push_back(r);
  // 100: a durable commit every 100 writes (one batch).
  io0 = IoWriteBytes();
  std::vector<std::pair<std::string, std::string>> batch(100);
  t = RunOps(1, UINT64_MAX, a.sync_seconds, [&](int, uint64_t i) {
    for (int j = 0; j < 100; ++j) {
      MakeKey(rng.Uniform(n), cfg.key_bytes, &batch[j].first);
      batch[j].second.assign(vs.Next(i * 100 + j));
    }
    e->PutBatch(batch, true);
  });
  r = Make("sync", "overwrite, durable every 100 writes (writes/s; latency per 100)", *e, t);
  r.ops *= 100;
  r.ops_per_s *= 100;
  r.write_amp = (IoWriteBytes() - io0) / (r.ops * kv);
  out->push_back(r);
  // Group commit: many writer threads, every write durable.
  io0 = IoWriteBytes();
  std::vector<Rng> rngs;
  for (int i = 0; i < a.group_threads; ++i) rngs.emplace_back(50 + i);
  uint64_t syncs0 = 0, syncs1 = 0;
  bool counted = e->LogSyncs(&syncs0);
  t = RunOps(a.group_threads, UINT64_MAX, a.sync_seconds, [&](int th, uint64_t i) {
    thread_local std::string k;
    MakeKey(rngs[th].Uniform(n), cfg.key_bytes, &k);
    e->Put(k, vs.Next(i * 64 + th));
  });
  r = Make("sync",
           "overwrite, durable every write, " + std::to_string(a.group_threads) + " writer threads",
           *e, t);
  r.write_amp = (IoWriteBytes() - io0) / (t.ops * kv);
  if (counted && e->LogSyncs(&syncs1) && syncs1 > syncs0) {
    r.note = Fmt("%.1f writes per fdatasync, ", static_cast<double>(t.ops) / (syncs1 - syncs0)) +
             Fmt("%.0f fdatasync/s", (syncs1 - syncs0) / t.seconds);
  }
  out->push_back(r);
  e->Close();
  for (auto& x : *out) x.peak_rss_mb = PeakRssBytes() / 1048576.0;
}

}  // namespace

std::string MemoryLimitMethod() {
  if (access("/sys/fs/cgroup/memory/cgroup.procs", W_OK) == 0) return "cgroup v1 memory controller";
  return "";
}

void RunWorkload(const Args& a, const std::string& workload, const std::string& engine,
                 const std::string& dir, std::vector<PhaseResult>* out) {
  if (workload == "small" || workload == "halodb")
    KeyValueWorkload(a, workload, engine, dir, out);
  else if (workload == "small-reopen" || workload == "halodb-reopen")
    IndexMemory(a, workload.substr(0, workload.find('-')), engine, dir, out);
  else if (workload == "halodb-ltm")
    LtmWorkload(a, engine, dir, out);
  else if (workload == "scan")
    ScanWorkload(a, engine, dir, out);
  else if (workload == "recovery")
    RecoveryWorkload(a, engine, dir, out);
  else if (workload == "sync")
    SyncWorkload(a, engine, dir, out);
  else
    Die("unknown workload " + workload);
}

}  // namespace varve_bench

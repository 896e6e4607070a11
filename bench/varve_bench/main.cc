// varve-bench: the same workloads on Varve and its peers (RocksDB, LevelDB, LMDB, tkrzw, Kyoto
// Cabinet) side by side in one run, with fio's device limits, printed as Markdown with ratios.
// See bench/README.md.
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench.h"

namespace varve_bench {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "varve-bench: %s\n", what.c_str());
  std::fflush(nullptr);
  _exit(2);
}

const std::vector<std::string>& AllEngineNames() {
  static const std::vector<std::string> names = {
      "varve",   "varve-ordered", "varve-pread", "varve-write", "rocksdb",
      "leveldb", "lmdb",          "tkrzw-hash",  "tkrzw-tree",  "kyoto-hash"};
  return names;
}

std::unique_ptr<Engine> MakeEngine(const std::string& name) {
  if (name.rfind("varve", 0) == 0) return MakeVarve(name);
  if (name == "rocksdb") return MakeRocksDB();
  if (name == "leveldb") return MakeLevelDB();
  if (name == "lmdb") return MakeLmdb();
  if (name == "tkrzw-hash") return MakeTkrzw(false);
  if (name == "tkrzw-tree") return MakeTkrzw(true);
  if (name == "kyoto-hash") return MakeKyotoHash();
  Die("unknown engine " + name);
}

namespace {

nlohmann::json ToJson(const PhaseResult& r) {
  return {{"workload", r.workload},
          {"phase", r.phase},
          {"engine", r.engine},
          {"settings", r.settings},
          {"ops", r.ops},
          {"seconds", r.seconds},
          {"ops_per_s", r.ops_per_s},
          {"p50_us", r.p50_us},
          {"p99_us", r.p99_us},
          {"p999_us", r.p999_us},
          {"write_amp", r.write_amp},
          {"space_amp", r.space_amp},
          {"peak_rss_mb", r.peak_rss_mb},
          {"index_bytes_per_key", r.index_bytes_per_key},
          {"index_anon_bytes_per_key", r.index_anon_bytes_per_key},
          {"read_bytes_per_op", r.read_bytes_per_op},
          {"cpu_us_per_op", r.cpu_us_per_op},
          {"note", r.note}};
}

PhaseResult FromJson(const nlohmann::json& j) {
  PhaseResult r;
  r.workload = j["workload"];
  r.phase = j["phase"];
  r.engine = j["engine"];
  r.settings = j["settings"];
  r.ops = j["ops"];
  r.seconds = j["seconds"];
  r.ops_per_s = j["ops_per_s"];
  r.p50_us = j["p50_us"];
  r.p99_us = j["p99_us"];
  r.p999_us = j["p999_us"];
  r.write_amp = j["write_amp"];
  r.space_amp = j["space_amp"];
  r.peak_rss_mb = j["peak_rss_mb"];
  r.index_bytes_per_key = j["index_bytes_per_key"];
  r.index_anon_bytes_per_key = j["index_anon_bytes_per_key"];
  r.read_bytes_per_op = j["read_bytes_per_op"];
  r.cpu_us_per_op = j["cpu_us_per_op"];
  r.note = j["note"];
  return r;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty()) out.push_back(x);
  return out;
}

std::string Slurp(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace
}  // namespace varve_bench

int main(int argc, char** argv) {
  using namespace varve_bench;
  Args a;
  CLI::App app{"varve-bench: Varve against RocksDB, LevelDB, LMDB, tkrzw and Kyoto Cabinet"};
  std::string workloads = "small,halodb,halodb-ltm,scan,recovery,sync";
  std::string engines =
      "varve,varve-ordered,varve-pread,rocksdb,leveldb,lmdb,tkrzw-hash,tkrzw-tree,kyoto-hash";
  bool no_fio = false, no_drop = false, smoke = false;
  app.add_option("--workloads", workloads,
                 "Comma-separated: small,halodb,halodb-ltm,scan,recovery,sync");
  app.add_option("--engines", engines,
                 "Comma-separated engines (varve, varve-ordered, varve-pread, varve-write, "
                 "rocksdb, leveldb, lmdb, tkrzw-hash, tkrzw-tree, kyoto-hash)");
  app.add_option("--dir", a.dir, "Directory for the stores and fio's files (emptied)");
  app.add_option("--small-keys", a.small_keys, "small: number of keys");
  app.add_option("--small-key-bytes", a.small_key_bytes, "small: key size (>= 8)");
  app.add_option("--small-value-bytes", a.small_value_bytes, "small: value size");
  app.add_option("--halodb-keys", a.halodb_keys, "halodb: number of keys");
  app.add_option("--halodb-value-bytes", a.halodb_value_bytes, "halodb: value size");
  app.add_option("--halodb-reads", a.halodb_reads, "halodb: random reads");
  app.add_option("--mixed-readers", a.mixed_readers, "halodb: reader threads beside 1 writer");
  app.add_option("--mixed-seconds", a.mixed_seconds, "halodb: seconds of the mixed phase");
  app.add_option("--ltm-keys", a.ltm_keys, "halodb-ltm: number of 10 KB values");
  app.add_option("--ltm-memory-mb", a.ltm_memory_mb, "halodb-ltm: memory limit (cgroup)");
  app.add_option("--ltm-seconds", a.ltm_seconds, "halodb-ltm: seconds per read phase");
  app.add_option("--ltm-threads", a.ltm_threads, "halodb-ltm: reader threads of the 2nd phase");
  app.add_option("--scan-keys", a.scan_keys, "scan: number of keys");
  app.add_option("--range-scans", a.range_scans, "scan: number of range scans");
  app.add_option("--recovery-keys", a.recovery_keys, "recovery: number of keys");
  app.add_option("--kill-after-puts", a.kill_after_puts,
                 "recovery: acknowledged puts before kill -9 (the same for every engine)");
  app.add_option("--kill-after-seconds", a.kill_after_seconds,
                 "recovery: kill -9 after this long if the puts are not reached");
  app.add_option("--sync-keys", a.sync_keys, "sync: keys overwritten");
  app.add_option("--sync-seconds", a.sync_seconds, "sync: seconds per phase");
  app.add_option("--group-threads", a.group_threads, "sync: writer threads for group commit");
  app.add_option("--fio-size-mb", a.fio_size_mb, "fio: file size");
  app.add_option("--fio-seconds", a.fio_seconds, "fio: seconds per job");
  app.add_flag("--no-fio", no_fio, "Skip the fio device measurements");
  app.add_flag("--no-drop-caches", no_drop, "Never drop the page cache");
  app.add_flag("--keep", a.keep, "Keep the stores afterwards");
  app.add_flag("--smoke", smoke, "Tiny counts, no fio: checks that every engine and workload runs");
  app.add_option("--out", a.out, "Also write the Markdown report to this file");
  CLI11_PARSE(app, argc, argv);
  if (smoke) {
    a.small_keys = 5000;
    a.halodb_keys = 300;
    a.halodb_reads = 1000;
    a.mixed_seconds = 0.2;
    a.ltm_keys = 300;
    a.ltm_seconds = 0.2;
    a.ltm_threads = 4;
    a.scan_keys = 5000;
    a.range_scans = 100;
    a.recovery_keys = 5000;
    a.kill_after_puts = 1000;
    a.kill_after_seconds = 0.5;
    a.sync_keys = 1000;
    a.sync_seconds = 0.1;
    a.group_threads = 4;
    no_fio = true;
    no_drop = true;
  }
  a.fio = !no_fio;
  a.drop_caches = !no_drop;
  a.workloads = Split(workloads);
  a.engines = Split(engines);
  if (a.small_key_bytes < 8) a.small_key_bytes = 8;
  std::filesystem::create_directories(a.dir);

  std::ostringstream header;
  {
    std::string cmd;
    // The program by its name only: the report must not carry this machine's paths.
    cmd = "varve-bench";
    for (int i = 1; i < argc; ++i) cmd += " " + std::string(argv[i]);
    time_t now = time(nullptr);
    char ts[64];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    utsname u;
    uname(&u);
    header << "## varve-bench run, " << ts << "\n\n    " << cmd << "\n\n";
    header << "Machine: " << Slurp("nproc") << " CPUs ("
           << Slurp("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2") << "), "
           << Slurp("free -g | awk '/Mem:/{print $2}'") << " GiB, kernel " << u.release
           << ", load average at start " << Slurp("cut -d' ' -f1-3 /proc/loadavg") << ". Data in `"
           << a.dir << "` (" << Slurp("df -h --output=source,fstype " + a.dir + " | tail -1")
           << ").\n";
    header << "Sizes: small " << a.small_keys << " keys of " << a.small_key_bytes << "+"
           << a.small_value_bytes << " B; halodb " << a.halodb_keys << " keys of "
           << a.halodb_key_bytes << "+" << a.halodb_value_bytes << " B, " << a.halodb_reads
           << " reads, mixed 1 writer + " << a.mixed_readers << " readers for " << a.mixed_seconds
           << " s; halodb-ltm " << a.ltm_keys << " values in " << a.ltm_memory_mb
           << " MiB of memory, " << a.ltm_seconds << " s per phase; scan " << a.scan_keys
           << " keys; recovery " << a.recovery_keys << " keys; sync " << a.sync_seconds
           << " s per phase, " << a.group_threads << " threads for group commit.\n";
    std::string ml = MemoryLimitMethod();
    header << "Larger-than-memory method: "
           << (ml.empty() ? "none available (results are cache-resident!)" : ml) << "; page cache "
           << (a.drop_caches ? "dropped (echo 3 > /proc/sys/vm/drop_caches) before cold phases"
                             : "never dropped")
           << ". Each engine runs each workload in its own forked process (peak RSS = that "
              "process's VmHWM; WA from its /proc/self/io write_bytes after the engine's own "
              "sync/close; index B/key = RSS growth of a fresh process over Open + one Get).\n";
  }
  std::fprintf(stderr, "==> fio\n");
  Device dev = RunFio(a);
  std::vector<PhaseResult> all;
  for (const auto& w : a.workloads) {
    for (const auto& e : a.engines) {
      // varve-pread differs from varve only in how values are read; the ordered index only
      // matters where keys are scanned, written or loaded.
      if (e == "varve-pread" && w != "halodb" && w != "halodb-ltm") continue;
      // varve-write differs in how writes are appended.
      if (e == "varve-write" && w != "small" && w != "halodb" && w != "sync") continue;
      if (e == "varve-ordered" && w == "halodb-ltm") continue;
      std::string dir = a.dir + "/" + w + "-" + e;
      RemoveTree(dir);
      std::filesystem::create_directories(dir);
      std::string res_file = a.dir + "/" + w + "-" + e + ".json";
      std::fprintf(stderr, "==> %s / %s\n", w.c_str(), e.c_str());
      uint64_t t0 = NowNs();
      std::fflush(nullptr);
      // small and halodb leave their store for a second, fresh process that measures index
      // memory on reopen (see IndexMemory in workloads.cc).
      std::vector<std::string> steps = {w};
      if (w == "small" || w == "halodb") steps.push_back(w + "-reopen");
      int status = 0;
      for (const auto& step : steps) {
        pid_t pid = fork();
        if (pid == 0) {
          std::vector<PhaseResult> out;
          RunWorkload(a, step, e, dir, &out);
          std::ofstream f(res_file, std::ios::app);
          for (auto& r : out) f << ToJson(r).dump() << "\n";
          f.close();
          std::fflush(nullptr);
          _exit(0);
        }
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) break;
      }
      std::ifstream f(res_file);
      std::string line;
      int n = 0;
      while (std::getline(f, line)) {
        all.push_back(FromJson(nlohmann::json::parse(line)));
        ++n;
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n == 0) {
        PhaseResult r;
        r.workload = w;
        r.phase = "FAILED";
        r.engine = e;
        r.note = "child exit status " + std::to_string(status);
        all.push_back(r);
      }
      std::remove(res_file.c_str());
      if (!a.keep) RemoveTree(dir);
      std::fprintf(stderr, "    %.1f s\n", (NowNs() - t0) / 1e9);
    }
  }
  std::string report = Report(a, dev, all, header.str());
  std::cout << report;
  if (!a.out.empty()) std::ofstream(a.out) << report;
  bool failed = false;
  for (auto& r : all) failed |= r.phase == "FAILED";
  return failed ? 1 : 0;
}

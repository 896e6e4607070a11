// varve-table-bench: the same keys through Varve's TableBuilder/TableReader, tinycdb (cdb_make /
// cdb_find) and, for sorted building, the RocksDB SstFileWriter and LevelDB TableBuilder; prints
// a Markdown table with ratios to cdb (bench/RESULTS.md has a run and how to read it).
//   varve-table-bench --dir DIR [--keys N] [--value-bytes B] [--gets N] [--build-rounds R]
//                     [--no-sst] [--merge-tables K] [--merge-rounds R] [--merge-compressions L]
//                     [--merge-variants] [--merge-only | --no-merge]
#include <cdb.h>
#include <fcntl.h>
#include <leveldb/env.h>
#include <leveldb/options.h>
#include <leveldb/table_builder.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "varve/table.h"

namespace {

using Clock = std::chrono::steady_clock;
double Secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
uint64_t FileSize(const std::string& p) { return std::filesystem::file_size(p); }
void Die(const std::string& what) {
  std::fprintf(stderr, "varve-table-bench: %s\n", what.c_str());
  std::exit(2);
}
void Check(const varve::Status& s) {
  if (!s.ok()) Die(s.ToString());
}

std::string KeyFor(uint64_t i) {
  // 16 bytes, spread over the key space (so sorted order differs from insertion order).
  uint64_t h = i * 0x9E3779B97F4A7C15ull;
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return std::string(b, 16);
}
std::string ValueFor(uint64_t i, size_t len) {
  std::string v(len, 'v');
  for (size_t j = 0; j < len; ++j) v[j] = static_cast<char>('a' + (i * 31 + j * 7) % 26);
  std::memcpy(v.data(), &i, std::min<size_t>(8, len));
  return v;
}

// fsync of a file by path, then of its directory (what makes a new file durable).
void FsyncFileAndDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) Die("fsync " + path);
  ::close(fd);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0 || ::fsync(fd) != 0) Die("fsync " + dir);
  ::close(fd);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double Best(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

// One store built R times (rounds interleaved with the other stores). A build is timed in two
// parts: until the file is complete (every byte handed to the kernel, or on the device for
// O_DIRECT writes: readable by another process), and the fsync of the file and its directory
// that makes it durable.
struct Row {
  std::string name;
  std::string path;
  // Builds the file at path; returns the seconds until it is complete and sets *fsync_s.
  std::function<double(double* fsync_s)> build;
  std::vector<double> complete_s, fsync_s;
  uint64_t file_bytes = 0;
  double index_bytes_per_key = -1;
  double get_ops = 0;  // per second
  double get_p99_ns = 0;
  bool gets = false;                            // Gets are timed on the last round's file
  std::function<bool(uint64_t)> get = nullptr;  // looks key i up; false if it is missing
  std::vector<double> total_s() const {
    std::vector<double> t;
    for (size_t i = 0; i < complete_s.size(); ++i) t.push_back(complete_s[i] + fsync_s[i]);
    return t;
  }
};

Row NewRow(std::string name, std::string path) {
  Row r;
  r.name = std::move(name);
  r.path = std::move(path);
  return r;
}

struct GetResult {
  double ops = 0;
  double p99_ns = 0;
};

template <typename Fn>
GetResult TimeGets(const std::vector<uint64_t>& order, Fn&& get) {
  std::vector<uint32_t> lat(order.size());
  auto start = Clock::now();
  for (size_t i = 0; i < order.size(); ++i) {
    auto a = Clock::now();
    get(order[i]);
    lat[i] = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a).count());
  }
  double total = Secs(start, Clock::now());
  std::nth_element(lat.begin(), lat.begin() + lat.size() * 99 / 100, lat.end());
  return GetResult{order.size() / total, static_cast<double>(lat[lat.size() * 99 / 100])};
}

// Sequential write bandwidth of the directory's disk: 256 MiB in 1 MiB writes, then fdatasync;
// through the page cache, or with O_DIRECT (aligned buffer). Returns 0 if O_DIRECT is refused.
double DiskWriteMBps(const std::string& dir, bool direct) {
  std::string path = dir + "/bandwidth.tmp";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0 && direct) return 0;
  if (fd < 0) Die("cannot create " + path);
  constexpr size_t kChunk = 1 << 20;
  char* buf = static_cast<char*>(std::aligned_alloc(4096, kChunk));
  std::memset(buf, 'x', kChunk);
  const int mib = 256;
  auto start = Clock::now();
  for (int i = 0; i < mib; ++i) {
    if (::write(fd, buf, kChunk) != static_cast<ssize_t>(kChunk)) {
      if (direct && i == 0) {  // some file systems open with O_DIRECT but refuse the write
        ::close(fd);
        ::unlink(path.c_str());
        std::free(buf);
        return 0;
      }
      Die("write");
    }
  }
  ::fdatasync(fd);
  double s = Secs(start, Clock::now());
  ::close(fd);
  ::unlink(path.c_str());
  std::free(buf);
  return mib / s * (kChunk / 1e6);
}

// CPU seconds (user + system) of every thread of the process so far (RUSAGE_SELF), or of the
// calling thread (RUSAGE_THREAD).
double CpuSecs(int who = RUSAGE_SELF) {
  rusage u;
  ::getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One merge (input set x variant), timed once per round.
struct MergeResult {
  std::string name;
  double in_mb = 0, out_mb = 0;
  double logical_mb = 0;               // key and value bytes of the merged records
  std::vector<double> round_s, cpu_s;  // CPU: every thread of the process, user + system
  std::vector<double> thread_cpu_s;    // CPU of the thread calling MergeTables
  std::vector<double> disk_mbps;       // O_DIRECT bandwidth measured just before each round
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("varve-table-bench: Varve tables against tinycdb, RocksDB and LevelDB");
  std::string dir;
  uint64_t keys = 1000000, gets = 1000000;
  size_t value_bytes = 100;
  int merge_tables = 10;
  int merge_rounds = 3;
  int build_rounds = 3;
  bool merge_only = false, no_merge = false, no_sst = false;
  bool merge_variants = false;
  std::string merge_compressions = "none,lz4";
  app.add_option("--dir", dir, "Scratch directory (files are removed at the end)")->required();
  app.add_option("--keys", keys, "Records")->capture_default_str();
  app.add_option("--value-bytes", value_bytes, "Value size")->capture_default_str();
  app.add_option("--gets", gets, "Random Gets per store")->capture_default_str();
  app.add_option("--build-rounds", build_rounds,
                 "Builds per store, rounds interleaved across the stores (best and median)")
      ->capture_default_str();
  app.add_flag("--no-sst", no_sst, "Leave out the RocksDB and LevelDB builds");
  app.add_option("--merge-tables", merge_tables, "Tables merged")->capture_default_str();
  app.add_option("--merge-rounds", merge_rounds,
                 "Merges timed per input set and variant, rounds interleaved")
      ->capture_default_str();
  app.add_option("--merge-compressions", merge_compressions,
                 "Compressions of the merged tables (inputs and output), comma-separated")
      ->capture_default_str();
  app.add_flag("--merge-only", merge_only, "Only the merges and the disk bandwidth");
  app.add_flag("--no-merge", no_merge, "No merges");
  app.add_flag("--merge-variants", merge_variants,
               "Also merge with the block writer on the calling thread, with 2 writer threads, "
               "with buffered writes, and with the inputs' checksums checked ahead (verify_ahead)");
  CLI11_PARSE(app, argc, argv);
  if (build_rounds < 1 || merge_rounds < 1) Die("rounds must be >= 1");
  std::filesystem::create_directories(dir);

  std::printf("generating %llu keys (16 B) with %zu-byte values...\n",
              static_cast<unsigned long long>(keys), value_bytes);
  std::vector<std::string> kv_keys(keys);
  for (uint64_t i = 0; i < keys; ++i) kv_keys[i] = KeyFor(i);
  std::vector<uint64_t> sorted(keys);
  for (uint64_t i = 0; i < keys; ++i) sorted[i] = i;
  std::sort(sorted.begin(), sorted.end(),
            [&](uint64_t a, uint64_t b) { return kv_keys[a] < kv_keys[b]; });
  std::vector<std::string> values(keys);
  for (uint64_t i = 0; i < keys; ++i) values[i] = ValueFor(i, value_bytes);
  // The sorted input in its own arrays, laid out in sorted order: the sorted builds read their
  // input sequentially, as cdb reads its unsorted input (a walk of `sorted` over kv_keys and
  // values would add cache misses of the benchmark's own to theirs).
  std::vector<std::string> sorted_keys(keys), sorted_values(keys);
  for (uint64_t n = 0; n < keys; ++n) {
    sorted_keys[n] = kv_keys[sorted[n]];
    sorted_values[n] = values[sorted[n]];
  }
  std::vector<uint64_t> order(gets);
  std::mt19937_64 rng(7);
  for (auto& o : order) o = rng() % keys;
  const double user_mb = keys * (16.0 + value_bytes) / 1e6;
  std::vector<Row> rows;
  std::string scratch;

  if (!merge_only) {
    {
      Row r = NewRow("tinycdb (cdb_make, unsorted input)", dir + "/bench.cdb");
      r.gets = true;
      r.build = [&, path = r.path](double* fsync_s) {
        auto start = Clock::now();
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) Die("cannot create " + path);
        struct cdb_make cm;
        cdb_make_start(&cm, fd);
        for (uint64_t i = 0; i < keys; ++i) {
          cdb_make_add(&cm, kv_keys[i].data(), 16, values[i].data(), values[i].size());
        }
        if (cdb_make_finish(&cm) != 0) Die("cdb_make_finish");
        const double complete = Secs(start, Clock::now());
        ::close(fd);
        auto sync_start = Clock::now();
        FsyncFileAndDir(path);
        *fsync_s = Secs(sync_start, Clock::now());
        return complete;
      };
      rows.push_back(r);
    }
    // Varve tables, one per compression; none also with buffered writes (like cdb's).
    struct VarveBuild {
      varve::TableCompression c;
      bool direct;
    };
    for (VarveBuild v : {VarveBuild{varve::TableCompression::kNone, true},
                         VarveBuild{varve::TableCompression::kNone, false},
                         VarveBuild{varve::TableCompression::kLz4, true},
                         VarveBuild{varve::TableCompression::kZstd, true}}) {
      const std::string c = varve::TableCompressionName(v.c);
      Row r =
          NewRow("varve table (" + c + (v.direct ? "" : ", buffered writes") + ", sorted input)",
                 dir + "/bench-" + c + (v.direct ? "" : "-buffered") + ".vtb");
      r.gets = v.direct;
      r.build = [&, path = r.path, v](double* fsync_s) {
        varve::TableOptions o;
        o.compression = v.c;
        o.direct_writes = v.direct;
        o.sync = false;  // the fsync is timed on its own below
        auto start = Clock::now();
        auto b = varve::TableBuilder::Create(path, o);
        Check(b.status());
        for (uint64_t n = 0; n < keys; ++n) Check((*b)->Add(sorted_keys[n], sorted_values[n]));
        Check((*b)->Finish());
        b->reset();  // removes its temporary files
        const double complete = Secs(start, Clock::now());
        auto sync_start = Clock::now();
        FsyncFileAndDir(path);
        *fsync_s = Secs(sync_start, Clock::now());
        return complete;
      };
      rows.push_back(r);
    }
    if (!no_sst) {
      // RocksDB SstFileWriter (build only: reading is the full RocksDB engine). Its Finish syncs
      // the file, so "complete" includes that fsync.
      Row r = NewRow(
          "RocksDB SstFileWriter (sorted, default block-based, snappy if built in; Finish "
          "syncs)",
          dir + "/bench.sst");
      r.build = [&, path = r.path](double* fsync_s) {
        rocksdb::Options opts;
        rocksdb::SstFileWriter w(rocksdb::EnvOptions(), opts);
        auto start = Clock::now();
        if (!w.Open(path).ok()) Die("rocksdb open");
        for (uint64_t n = 0; n < keys; ++n) {
          if (!w.Put(sorted_keys[n], sorted_values[n]).ok()) Die("rocksdb put");
        }
        if (!w.Finish().ok()) Die("rocksdb finish");
        const double complete = Secs(start, Clock::now());
        auto sync_start = Clock::now();
        FsyncFileAndDir(path);
        *fsync_s = Secs(sync_start, Clock::now());
        return complete;
      };
      rows.push_back(r);
      // LevelDB TableBuilder (build only).
      Row l = NewRow("LevelDB TableBuilder (sorted, snappy if built in)", dir + "/bench.ldb");
      l.build = [&, path = l.path](double* fsync_s) {
        leveldb::Options opts;
        leveldb::WritableFile* f = nullptr;
        auto start = Clock::now();
        if (!leveldb::Env::Default()->NewWritableFile(path, &f).ok()) Die("leveldb file");
        {
          leveldb::TableBuilder tb(opts, f);
          for (uint64_t n = 0; n < keys; ++n) tb.Add(sorted_keys[n], sorted_values[n]);
          if (!tb.Finish().ok()) Die("leveldb finish");
        }
        if (!f->Close().ok()) Die("leveldb close");
        delete f;
        const double complete = Secs(start, Clock::now());
        auto sync_start = Clock::now();
        FsyncFileAndDir(path);
        *fsync_s = Secs(sync_start, Clock::now());
        return complete;
      };
      rows.push_back(l);
    }
    // Rounds interleaved: store A, B, C, ... then again; the last round's files stay for the
    // Gets.
    for (int round = 0; round < build_rounds; ++round) {
      for (Row& r : rows) {
        std::filesystem::remove(r.path);
        double fsync_s = 0;
        r.complete_s.push_back(r.build(&fsync_s));
        r.fsync_s.push_back(fsync_s);
        std::printf("build round %d: %s: %.2f s + fsync %.2f s\n", round, r.name.c_str(),
                    r.complete_s.back(), fsync_s);
        std::fflush(stdout);
        if (round + 1 < build_rounds || !r.gets) {
          r.file_bytes = FileSize(r.path);
          std::filesystem::remove(r.path);
        }
      }
    }
    for (Row& r : rows) {
      if (!r.gets) continue;
      r.file_bytes = FileSize(r.path);
      if (r.path.ends_with(".cdb")) {
        // Everything that is not key or value bytes: the 2 KiB header, 8 bytes per record and
        // the 16-byte hash slots (2 per record).
        r.index_bytes_per_key = (r.file_bytes - keys * (16.0 + value_bytes)) / keys;
        int fd = ::open(r.path.c_str(), O_RDONLY);
        auto c = std::make_shared<struct cdb>();
        cdb_init(c.get(), fd);
        r.get = [c, &kv_keys, &scratch](uint64_t i) {
          if (cdb_find(c.get(), kv_keys[i].data(), 16) <= 0) return false;
          scratch.assign(static_cast<const char*>(cdb_getdata(c.get())), cdb_datalen(c.get()));
          return true;
        };
      } else {
        auto t = varve::TableReader::Open(r.path);
        Check(t.status());
        const auto& p = (*t)->properties();
        r.index_bytes_per_key = double(p.hash_index_bytes + p.sparse_index_bytes) / p.entries;
        std::shared_ptr<varve::TableReader> reader = *t;
        r.get = [reader, &kv_keys, &scratch](uint64_t i) {
          return reader->Get(kv_keys[i], &scratch).ok();
        };
      }
    }
  }

  // Merges: K tables merged into one, each key in one table, for each compression (inputs and
  // output alike). "interleaved": keys dealt round-robin (every output block takes records from
  // every input); "disjoint": table k holds the k-th contiguous range of the sorted keys (whole
  // runs of one input, which the merge copies block by block). Every input set is built first,
  // then the rounds run over all sets and variants in turn, with the disk's bandwidth measured
  // in every round.
  struct InputSet {
    std::string name;
    varve::TableCompression c;
    std::vector<std::string> paths;
    std::vector<std::shared_ptr<varve::TableReader>> readers;
    double in_mb = 0;
  };
  std::vector<InputSet> sets;
  std::vector<MergeResult> merges;
  std::vector<double> disk_buffered, disk_direct;
  // The default variant leaves TableOptions as they are (so this program also measures builds
  // whose defaults differ).
  struct Variant {
    const char* name;
    std::optional<int> writer_threads;
    bool direct_writes = true;
    bool verify_ahead = false;
  };
  std::vector<Variant> variants = {{"", std::nullopt}};
  if (merge_variants) {
    variants.push_back({", writer threads 0", 0});
    variants.push_back({", writer threads 2", 2});
    variants.push_back({", buffered writes", std::nullopt, false});
    variants.push_back({", verify-ahead", std::nullopt, true, true});
  }
  if (!no_merge) {
    std::vector<varve::TableCompression> comps;
    for (size_t at = 0; at <= merge_compressions.size();) {
      size_t comma = merge_compressions.find(',', at);
      if (comma == std::string::npos) comma = merge_compressions.size();
      auto c = varve::ParseTableCompression(merge_compressions.substr(at, comma - at));
      Check(c.status());
      comps.push_back(*c);
      at = comma + 1;
    }
    for (varve::TableCompression c : comps) {
      for (const char* layout : {"interleaved", "disjoint"}) {
        InputSet set;
        set.name = std::string(layout) + ", " + varve::TableCompressionName(c);
        set.c = c;
        const bool disjoint = std::string(layout) == "disjoint";
        varve::TableOptions o;
        o.compression = c;
        o.sync = false;
        std::vector<std::unique_ptr<varve::TableBuilder>> builders;
        for (int k = 0; k < merge_tables; ++k) {
          set.paths.push_back(dir + "/merge-" + varve::TableCompressionName(c) + "-" + layout +
                              "-" + std::to_string(k) + ".vtb");
          auto b = varve::TableBuilder::Create(set.paths.back(), o);
          Check(b.status());
          builders.push_back(std::move(*b));
        }
        for (uint64_t n = 0; n < keys; ++n) {
          const uint64_t k = disjoint ? n * merge_tables / keys : sorted[n] % merge_tables;
          Check(builders[k]->Add(sorted_keys[n], sorted_values[n]));
        }
        for (int k = 0; k < merge_tables; ++k) {
          Check(builders[k]->Finish());
          auto r = varve::TableReader::Open(set.paths[k]);
          Check(r.status());
          set.readers.push_back(*r);
          set.in_mb += FileSize(set.paths[k]) / 1e6;
        }
        sets.push_back(std::move(set));
      }
    }
    for (const InputSet& set : sets) {
      for (const Variant& v : variants) {
        MergeResult m;
        m.name = set.name + v.name;
        m.in_mb = set.in_mb;
        merges.push_back(m);
      }
    }
    const std::string out = dir + "/merged.vtb";
    for (int round = 0; round < merge_rounds; ++round) {
      disk_buffered.push_back(DiskWriteMBps(dir, false));
      size_t m = 0;
      for (const InputSet& set : sets) {
        for (const Variant& v : variants) {
          varve::MergeOptions mo;
          mo.table.compression = set.c;
          if (v.writer_threads) mo.table.writer_threads = *v.writer_threads;
          mo.table.direct_writes = v.direct_writes;
          mo.verify_ahead = v.verify_ahead;
          MergeResult& r = merges[m++];
          r.disk_mbps.push_back(DiskWriteMBps(dir, true));
          disk_direct.push_back(r.disk_mbps.back());
          auto start = Clock::now();
          const double cpu_start = CpuSecs();
          const double thread_cpu_start = CpuSecs(RUSAGE_THREAD);
          Check(varve::MergeTables(set.readers, out, mo));
          r.round_s.push_back(Secs(start, Clock::now()));
          r.cpu_s.push_back(CpuSecs() - cpu_start);
          r.thread_cpu_s.push_back(CpuSecs(RUSAGE_THREAD) - thread_cpu_start);
          std::printf("merge round %d: %s: %.2f s, CPU %.2f s\n", round, r.name.c_str(),
                      r.round_s.back(), r.cpu_s.back());
          std::fflush(stdout);
          r.out_mb = FileSize(out) / 1e6;
          auto t = varve::TableReader::Open(out);
          Check(t.status());
          r.logical_mb = ((*t)->properties().key_bytes + (*t)->properties().value_bytes) / 1e6;
          t->reset();
          std::filesystem::remove(out);
        }
      }
    }
    for (InputSet& set : sets) {
      set.readers.clear();
      for (auto& p : set.paths) std::filesystem::remove(p);
    }
  }
  if (disk_direct.empty()) {
    disk_buffered.push_back(DiskWriteMBps(dir, false));
    disk_direct.push_back(DiskWriteMBps(dir, true));
  }

  // Random Gets: one untimed pass per store (page faults; Varve's one-time block checksums), then
  // three timed rounds with the stores interleaved (the machine is shared: load that comes and
  // goes hits every store alike); each store's best round is reported.
  for (Row& r : rows) {
    if (!r.get) continue;
    for (uint64_t i : order) {
      if (!r.get(i)) Die(r.name + ": missing key");
    }
  }
  for (int round = 0; round < 3; ++round) {
    for (Row& r : rows) {
      if (!r.get) continue;
      GetResult g = TimeGets(order, r.get);
      if (g.ops > r.get_ops) {
        r.get_ops = g.ops;
        r.get_p99_ns = g.p99_ns;
      }
    }
  }
  for (Row& r : rows) {
    r.get = nullptr;
    std::filesystem::remove(r.path);
  }

  auto list = [](const std::vector<double>& v, const char* fmt) {
    std::string s;
    for (double x : v) {
      char b[32];
      std::snprintf(b, sizeof b, fmt, x);
      s += (s.empty() ? "" : " ") + std::string(b);
    }
    return s;
  };
  if (!rows.empty()) {
    const Row& cdb = rows[0];
    std::printf(
        "\n%llu keys of 16 B, values of %zu B (%.0f MB of user data). Builds: %d rounds "
        "interleaved across the stores; \"complete\" = until the file is whole (written to the "
        "page cache, or to the device for O_DIRECT writes), \"fsync\" = then fsync of the file "
        "and its directory. vs cdb: the median over rounds of (cdb's time / the store's time) in "
        "the same round. Gets: %llu random, one thread, best of 3 interleaved rounds after an "
        "untimed pass.\n\n",
        static_cast<unsigned long long>(keys), value_bytes, user_mb, build_rounds,
        static_cast<unsigned long long>(gets));
    std::printf(
        "| store | complete s best / median | fsync s median | total s best / median | "
        "complete vs cdb | total vs cdb | file MB | index B/key | Get/s | Get vs cdb | Get p99 "
        "ns |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows) {
      std::vector<double> complete_ratio, total_ratio;
      for (size_t i = 0; i < r.complete_s.size(); ++i) {
        complete_ratio.push_back(cdb.complete_s[i] / r.complete_s[i]);
        total_ratio.push_back((cdb.complete_s[i] + cdb.fsync_s[i]) /
                              (r.complete_s[i] + r.fsync_s[i]));
      }
      std::printf("| %s | %.2f / %.2f | %.2f | %.2f / %.2f | %.2fx | %.2fx | %.1f | ",
                  r.name.c_str(), Best(r.complete_s), Median(r.complete_s), Median(r.fsync_s),
                  Best(r.total_s()), Median(r.total_s()), Median(complete_ratio),
                  Median(total_ratio), r.file_bytes / 1e6);
      if (r.index_bytes_per_key >= 0) {
        std::printf("%.2f | ", r.index_bytes_per_key);
      } else {
        std::printf("n/a | ");
      }
      if (r.get_ops > 0) {
        std::printf("%.0f | %.2fx | %.0f |\n", r.get_ops, r.get_ops / cdb.get_ops, r.get_p99_ns);
      } else {
        std::printf("n/a | | |\n");
      }
    }
    std::printf("\nbuild rounds, complete + fsync seconds:\n");
    for (const Row& r : rows) {
      std::string s;
      for (size_t i = 0; i < r.complete_s.size(); ++i) {
        char b[48];
        std::snprintf(b, sizeof b, "%s%.2f+%.2f", i ? " " : "", r.complete_s[i], r.fsync_s[i]);
        s += b;
      }
      std::printf("  %s: %s\n", r.name.c_str(), s.c_str());
    }
  }
  const double disk = *std::max_element(disk_direct.begin(), disk_direct.end());
  const double disk_buf = *std::max_element(disk_buffered.begin(), disk_buffered.end());
  std::printf(
      "\ndisk sequential write, 256 MiB in 1 MiB writes + fdatasync: O_DIRECT before every "
      "merge %s MB/s (0: refused), buffered once per round %s MB/s; \"disk\" below = the best "
      "O_DIRECT figure (%.0f MB/s), or the best buffered one where O_DIRECT is refused; "
      "\"same-round disk\": the O_DIRECT figure measured just before that merge\n",
      list(disk_direct, "%.0f").c_str(), list(disk_buffered, "%.0f").c_str(), disk);
  if (merges.empty()) return 0;
  const double disk_ref = disk > 0 ? disk : disk_buf;
  std::printf(
      "\nmerges of %d tables, best of %d interleaved rounds: \"written\" = the output file's "
      "bytes per second, \"logical\" = the merged records' key and value bytes per second (what "
      "an uncompressed output would have to write)\n\n",
      merge_tables, merge_rounds);
  std::printf(
      "| merge | in MB | out MB | logical MB | best s | median s | CPU s (best) | merge thread "
      "CPU s (best) | written MB/s | "
      "logical MB/s | written %% of disk | logical %% of disk | written %% of same-round disk "
      "(median) | logical %% of same-round disk (median) | rounds s "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const MergeResult& m : merges) {
    const double best = Best(m.round_s);
    // Each round against the disk figure measured just before it (the disk is shared too).
    std::vector<double> same_round;
    for (size_t i = 0; i < m.round_s.size(); ++i) {
      const double d = m.disk_mbps[i] > 0 ? m.disk_mbps[i] : disk_buffered[i];
      same_round.push_back(100 * m.out_mb / m.round_s[i] / d);
    }
    const double same = Median(same_round);
    std::printf(
        "| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.0f%% | %.0f%% | "
        "%.0f%% | %.0f%% | %s |\n",
        m.name.c_str(), m.in_mb, m.out_mb, m.logical_mb, best, Median(m.round_s), Best(m.cpu_s),
        Best(m.thread_cpu_s), m.out_mb / best, m.logical_mb / best,
        100 * m.out_mb / best / disk_ref, 100 * m.logical_mb / best / disk_ref, same,
        same * m.logical_mb / m.out_mb, list(m.round_s, "%.2f").c_str());
  }
  return 0;
}

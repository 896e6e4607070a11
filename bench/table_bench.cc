// varve-table-bench: the same keys through Varve's TableBuilder/TableReader, tinycdb (cdb_make /
// cdb_find) and, for sorted building, the RocksDB SstFileWriter and LevelDB TableBuilder; prints
// a Markdown table with ratios to cdb (bench/RESULTS.md has a run and how to read it).
//   varve-table-bench --dir DIR [--keys N] [--value-bytes B] [--gets N] [--merge-tables K]
//                     [--merge-rounds R] [--merge-only]
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

struct Row {
  std::string name;
  double build_s = 0;
  uint64_t file_bytes = 0;
  double index_bytes_per_key = -1;
  double get_ops = 0;  // per second
  double get_p99_ns = 0;
  std::function<bool(uint64_t)> get = nullptr;  // looks key i up; false if it is missing
};

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

// CPU seconds (user + system) of every thread of the process so far.
double CpuSecs() {
  rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct MergeResult {
  std::string layout;  // and the variant, if any
  double in_mb = 0, out_mb = 0, best_s = 0;
  double best_cpu_s = 0;  // CPU seconds of the merge (all threads), the least of the rounds
  std::vector<double> round_s;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("varve-table-bench: Varve tables against tinycdb, RocksDB and LevelDB");
  std::string dir;
  uint64_t keys = 1000000, gets = 1000000;
  size_t value_bytes = 100;
  int merge_tables = 10;
  int merge_rounds = 1;
  bool merge_only = false;
  bool merge_variants = false;
  app.add_option("--dir", dir, "Scratch directory (files are removed at the end)")->required();
  app.add_option("--keys", keys, "Records")->capture_default_str();
  app.add_option("--value-bytes", value_bytes, "Value size")->capture_default_str();
  app.add_option("--gets", gets, "Random Gets per store")->capture_default_str();
  app.add_option("--merge-tables", merge_tables, "Tables merged")->capture_default_str();
  app.add_option("--merge-rounds", merge_rounds, "Merges timed per layout (best reported)")
      ->capture_default_str();
  app.add_flag("--merge-only", merge_only, "Only the merges and the disk bandwidth");
  app.add_flag("--merge-variants", merge_variants,
               "Also merge with the block writer on the calling thread and with buffered writes "
               "(rounds interleaved)");
  CLI11_PARSE(app, argc, argv);
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
  std::vector<uint64_t> order(gets);
  std::mt19937_64 rng(7);
  for (auto& o : order) o = rng() % keys;
  const double user_mb = keys * (16.0 + value_bytes) / 1e6;
  std::vector<Row> rows;
  std::vector<std::string> paths;  // removed at the end
  std::string scratch;

  // tinycdb
  if (!merge_only) {
    Row r{"tinycdb (cdb_make, unsorted input)"};
    std::string path = dir + "/bench.cdb";
    auto start = Clock::now();
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct cdb_make cm;
    cdb_make_start(&cm, fd);
    for (uint64_t i = 0; i < keys; ++i) {
      cdb_make_add(&cm, kv_keys[i].data(), 16, values[i].data(), values[i].size());
    }
    cdb_make_finish(&cm);
    ::fsync(fd);
    ::close(fd);
    r.build_s = Secs(start, Clock::now());
    r.file_bytes = FileSize(path);
    // Everything that is not key or value bytes: the 2 KiB header, 8 bytes per record and the
    // 16-byte hash slots (2 per record).
    r.index_bytes_per_key = (r.file_bytes - keys * (16.0 + value_bytes)) / keys;
    fd = ::open(path.c_str(), O_RDONLY);
    auto c = std::make_shared<struct cdb>();
    cdb_init(c.get(), fd);
    r.get = [c, &kv_keys, &scratch](uint64_t i) {
      if (cdb_find(c.get(), kv_keys[i].data(), 16) <= 0) return false;
      scratch.assign(static_cast<const char*>(cdb_getdata(c.get())), cdb_datalen(c.get()));
      return true;
    };
    rows.push_back(r);
    paths.push_back(path);
  }

  // Varve tables, one per compression.
  for (auto comp : {varve::TableCompression::kNone, varve::TableCompression::kLz4,
                    varve::TableCompression::kZstd}) {
    if (merge_only) break;
    Row r{std::string("varve table (") + varve::TableCompressionName(comp) + ", sorted input)"};
    std::string path = dir + "/bench-" + varve::TableCompressionName(comp) + ".vtb";
    varve::TableOptions o;
    o.compression = comp;
    auto start = Clock::now();
    auto b = varve::TableBuilder::Create(path, o);
    Check(b.status());
    for (uint64_t i : sorted) Check((*b)->Add(kv_keys[i], values[i]));
    Check((*b)->Finish());
    r.build_s = Secs(start, Clock::now());
    r.file_bytes = FileSize(path);
    auto t = varve::TableReader::Open(path);
    Check(t.status());
    const auto& p = (*t)->properties();
    r.index_bytes_per_key = double(p.hash_index_bytes + p.sparse_index_bytes) / p.entries;
    std::shared_ptr<varve::TableReader> reader = *t;
    r.get = [reader, &kv_keys, &scratch](uint64_t i) {
      return reader->Get(kv_keys[i], &scratch).ok();
    };
    rows.push_back(r);
    paths.push_back(path);
  }

  // RocksDB SstFileWriter (build only: reading is the full RocksDB engine).
  if (!merge_only) {
    Row r{"RocksDB SstFileWriter (sorted, default block-based, snappy if built in)"};
    std::string path = dir + "/bench.sst";
    rocksdb::Options opts;
    rocksdb::SstFileWriter w(rocksdb::EnvOptions(), opts);
    auto start = Clock::now();
    if (!w.Open(path).ok()) Die("rocksdb open");
    for (uint64_t i : sorted) {
      if (!w.Put(kv_keys[i], values[i]).ok()) Die("rocksdb put");
    }
    if (!w.Finish().ok()) Die("rocksdb finish");
    r.build_s = Secs(start, Clock::now());
    r.file_bytes = FileSize(path);
    rows.push_back(r);
    std::filesystem::remove(path);
  }

  // LevelDB TableBuilder (build only).
  if (!merge_only) {
    Row r{"LevelDB TableBuilder (sorted, snappy if built in)"};
    std::string path = dir + "/bench.ldb";
    leveldb::Options opts;
    leveldb::WritableFile* f = nullptr;
    auto start = Clock::now();
    if (!leveldb::Env::Default()->NewWritableFile(path, &f).ok()) Die("leveldb file");
    {
      leveldb::TableBuilder tb(opts, f);
      for (uint64_t i : sorted) tb.Add(kv_keys[i], values[i]);
      if (!tb.Finish().ok()) Die("leveldb finish");
    }
    f->Sync();
    f->Close();
    delete f;
    r.build_s = Secs(start, Clock::now());
    r.file_bytes = FileSize(path);
    rows.push_back(r);
    std::filesystem::remove(path);
  }

  // Merges: K lz4 tables merged into one, each key in one table. "interleaved": keys dealt
  // round-robin (every output block takes records from every input); "disjoint": table k holds
  // the k-th contiguous range of the sorted keys (whole runs of one input).
  std::vector<MergeResult> merges;
  for (const char* layout : {"interleaved", "disjoint"}) {
    MergeResult m;
    m.layout = layout;
    const bool disjoint = m.layout == "disjoint";
    std::vector<std::string> paths;
    varve::TableOptions o;
    o.compression = varve::TableCompression::kLz4;
    std::vector<std::unique_ptr<varve::TableBuilder>> builders;
    for (int k = 0; k < merge_tables; ++k) {
      paths.push_back(dir + "/merge" + std::to_string(k) + ".vtb");
      auto b = varve::TableBuilder::Create(paths.back(), o);
      Check(b.status());
      builders.push_back(std::move(*b));
    }
    for (uint64_t n = 0; n < keys; ++n) {
      uint64_t i = sorted[n];
      const uint64_t k = disjoint ? n * merge_tables / keys : i % merge_tables;
      Check(builders[k]->Add(kv_keys[i], values[i]));
    }
    std::vector<std::shared_ptr<varve::TableReader>> readers;
    for (int k = 0; k < merge_tables; ++k) {
      Check(builders[k]->Finish());
      auto r = varve::TableReader::Open(paths[k]);
      Check(r.status());
      readers.push_back(*r);
      m.in_mb += FileSize(paths[k]) / 1e6;
    }
    std::string out = dir + "/merged.vtb";
    struct Variant {
      const char* name;
      int writer_threads;
      bool direct_writes;
    };
    std::vector<Variant> variants = {{"", 1, true}};
    if (merge_variants) {
      variants = {{", writer threads 0, buffered", 0, false},
                  {", writer threads 1, buffered", 1, false},
                  {", writer threads 1, O_DIRECT", 1, true}};
    }
    std::vector<MergeResult> results(variants.size(), m);
    for (int round = 0; round < merge_rounds; ++round) {
      for (size_t v = 0; v < variants.size(); ++v) {
        varve::MergeOptions mo;
        mo.table = o;
        mo.table.writer_threads = variants[v].writer_threads;
        mo.table.direct_writes = variants[v].direct_writes;
        MergeResult& r = results[v];
        auto start = Clock::now();
        const double cpu_start = CpuSecs();
        Check(varve::MergeTables(readers, out, mo));
        const double s = Secs(start, Clock::now());
        const double cpu = CpuSecs() - cpu_start;
        r.best_cpu_s = round == 0 ? cpu : std::min(r.best_cpu_s, cpu);
        r.round_s.push_back(s);
        r.best_s = round == 0 ? s : std::min(r.best_s, s);
        r.out_mb = FileSize(out) / 1e6;
        std::filesystem::remove(out);
      }
    }
    for (size_t v = 0; v < variants.size(); ++v) {
      results[v].layout += variants[v].name;
      merges.push_back(results[v]);
    }
    readers.clear();
    for (auto& p : paths) std::filesystem::remove(p);
  }
  const double disk_mbps = DiskWriteMBps(dir, false);
  const double disk_direct_mbps = DiskWriteMBps(dir, true);

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
  for (Row& r : rows) r.get = nullptr;
  for (auto& p : paths) std::filesystem::remove(p);

  if (!rows.empty()) {
    const Row& cdb = rows[0];
    std::printf(
        "\n%llu keys of 16 B, values of %zu B (%.0f MB of user data), %llu random Gets "
        "(single thread; best of 3 interleaved rounds after an untimed pass)\n\n",
        static_cast<unsigned long long>(keys), value_bytes, user_mb,
        static_cast<unsigned long long>(gets));
    std::printf(
        "| store | build s | build MB/s | vs cdb | file MB | index B/key | Get/s | vs cdb | "
        "Get p99 ns |\n|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows) {
      std::printf("| %s | %.2f | %.0f | %.2fx | %.1f | ", r.name.c_str(), r.build_s,
                  user_mb / r.build_s, cdb.build_s / r.build_s, r.file_bytes / 1e6);
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
  }
  std::printf(
      "\ndisk sequential write, 256 MiB in 1 MiB writes + fdatasync: buffered %.0f MB/s, "
      "O_DIRECT %.0f MB/s (0: refused)\n\n",
      disk_mbps, disk_direct_mbps);
  std::printf(
      "| merge of %d lz4 tables | in MB | out MB | best s | rounds s | CPU s | read MB/s | written "
      "MB/s | %% of buffered disk | %% of O_DIRECT disk "
      "|\n|---|---|---|---|---|---|---|---|---|---|\n",
      merge_tables);
  for (const MergeResult& m : merges) {
    std::string rounds;
    for (double s : m.round_s) {
      char b[32];
      std::snprintf(b, sizeof b, "%s%.2f", rounds.empty() ? "" : " ", s);
      rounds += b;
    }
    const double out_mbps = m.out_mb / m.best_s;
    std::printf("| %s | %.0f | %.0f | %.2f | %s | %.2f | %.0f | %.0f | %.0f%% | ", m.layout.c_str(),
                m.in_mb, m.out_mb, m.best_s, rounds.c_str(), m.best_cpu_s, m.in_mb / m.best_s,
                out_mbps, 100 * out_mbps / disk_mbps);
    if (disk_direct_mbps > 0) {
      std::printf("%.0f%% |\n", 100 * out_mbps / disk_direct_mbps);
    } else {
      std::printf("n/a |\n");
    }
  }
  return 0;
}

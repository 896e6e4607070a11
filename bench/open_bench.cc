// varve-open-bench: fills a store with N keys (16-byte keys, 100-byte values by default), closes
// it, and times reopening it through the index checkpoint, through the hint files, and after a
// simulated crash (no checkpoint, the tail's hint removed, so the tail is scanned). Prints index
// memory per key.
//
//   varve-open-bench --dir /path/to/empty/dir --keys 10000000
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "varve/db.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Fail(const varve::Status& s) {
  std::fprintf(stderr, "varve-open-bench: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fill a Varve store and time reopening it"};
  std::string dir;
  uint64_t keys = 10'000'000;
  size_t key_bytes = 16, value_bytes = 100;
  bool keep = false;
  bool cold = false;
  std::string index = "hash";
  app.add_option("--dir", dir, "Directory for the store (created; must not hold a store)")
      ->required();
  app.add_option("--keys", keys, "Number of keys");
  app.add_option("--key-bytes", key_bytes, "Key size (>= 8)");
  app.add_option("--value-bytes", value_bytes, "Value size");
  app.add_option("--index", index, "hash or ordered")->check(CLI::IsMember({"hash", "ordered"}));
  app.add_flag("--keep", keep, "Keep the store afterwards");
  app.add_flag("--cold", cold, "Drop the page cache before each reopen (needs root)");
  CLI11_PARSE(app, argc, argv);
  if (key_bytes < 8) key_bytes = 8;

  varve::Options opts;
  opts.error_if_exists = true;
  opts.index = index == "ordered" ? varve::IndexKind::kOrdered : varve::IndexKind::kHash;
  auto t0 = std::chrono::steady_clock::now();
  {
    auto db = varve::DB::Open(opts, dir);
    if (!db.ok()) return Fail(db.status());
    std::mt19937_64 rng(42);
    std::string key(key_bytes, 'k'), value(value_bytes, 'v');
    varve::WriteBatch batch;
    // Keys in random order: a bijective scramble of 0..keys-1.
    for (uint64_t i = 0; i < keys; ++i) {
      uint64_t k = (i * 0x9E3779B97F4A7C15ull) ^ 0x5bd1e995;
      std::snprintf(key.data(), key_bytes + 1 > 17 ? 17 : key_bytes + 1, "%016llx",
                    static_cast<unsigned long long>(k));
      key.resize(key_bytes, 'k');
      for (size_t j = 0; j < value_bytes; j += 8) value[j] = static_cast<char>(rng());
      batch.Put(key, value);
      if (batch.Count() == 1000) {
        varve::Status s = (*db)->Write(batch);
        if (!s.ok()) return Fail(s);
        batch.Clear();
      }
    }
    if (batch.Count() > 0) {
      varve::Status s = (*db)->Write(batch);
      if (!s.ok()) return Fail(s);
    }
    varve::Status s = (*db)->Close();
    if (!s.ok()) return Fail(s);
  }
  double fill_s = Seconds(t0);
  std::printf("fill: %llu keys (%zu-byte keys, %zu-byte values) in %.2f s (%.0f keys/s)\n",
              static_cast<unsigned long long>(keys), key_bytes, value_bytes, fill_s, keys / fill_s);

  auto drop_caches = [&] {
    if (!cold) return;
    ::sync();
    std::ofstream f("/proc/sys/vm/drop_caches");
    f << "3\n";
    if (!f) std::fprintf(stderr, "varve-open-bench: cannot drop caches (not root?)\n");
  };
  varve::Options reopen_opts;
  reopen_opts.index = opts.index;
  // One reopen through the index checkpoint the close wrote (kHash), one through hint files.
  auto reopen = [&](bool checkpoint, bool write_after) -> int {
    reopen_opts.index_checkpoint = checkpoint;
    drop_caches();
    t0 = std::chrono::steady_clock::now();
    auto db = varve::DB::Open(reopen_opts, dir);
    if (!db.ok()) return Fail(db.status());
    double open_s = Seconds(t0);
    varve::Stats st = (*db)->GetStats();
    double keys_d = static_cast<double>(st.keys);
    std::printf("reopen (%s): %.3f s, %llu keys, %llu segments\n",
                st.index_from_checkpoint != 0 ? "index checkpoint" : "hint files", open_s,
                static_cast<unsigned long long>(st.keys),
                static_cast<unsigned long long>(st.segments));
    // (No RSS figure here: this process's allocator still holds what the fill freed. varve-bench
    // measures RSS growth in a fresh process.)
    std::printf("index memory: %.1f bytes/key (%.1f beyond the key)\n",
                st.index_memory_bytes / keys_d, st.index_memory_bytes / keys_d - key_bytes);
    if (write_after) {
      // Write once more so the tail is live (for the crash case below).
      varve::Status s = (*db)->Put("after-reopen", "x");
      if (!s.ok()) return Fail(s);
    }
    t0 = std::chrono::steady_clock::now();
    varve::Status s = (*db)->Close();
    if (!s.ok()) return Fail(s);
    std::printf("  close: %.3f s\n", Seconds(t0));
    return 0;
  };
  if (int rc = reopen(true, false); rc != 0) return rc;
  if (int rc = reopen(false, true); rc != 0) return rc;
  // Simulate a crash: no tail hint and no index checkpoint.
  reopen_opts.index_checkpoint = false;
  std::string tail_hint;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".hint" && e.path().string() > tail_hint) {
      tail_hint = e.path().string();
    }
  }
  if (!tail_hint.empty()) std::filesystem::remove(tail_hint);
  std::filesystem::remove(dir + "/INDEX");
  drop_caches();
  t0 = std::chrono::steady_clock::now();
  {
    auto db = varve::DB::Open(reopen_opts, dir);
    if (!db.ok()) return Fail(db.status());
    std::printf("reopen with the tail scanned (as after a crash): %.3f s\n", Seconds(t0));
  }
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}

// varve-table-get-cpu: random Gets on Varve tables timed in the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), for before/after comparisons of the table reader on a loaded machine
// (waiting for the CPU is not counted; cache misses other processes cause still are). Uses only
// the public table API, so the same file builds against an older tree (bench/RESULTS.md, issue 7
// run 3). `--build` writes one table per compression (none, lz4, zstd) into DIR; without it the
// tables in DIR are read: an untimed pass of --gets random existing keys, then the best of 3
// timed rounds.
//   varve-table-get-cpu --dir DIR --keys N --build
//   varve-table-get-cpu --dir DIR --keys N [--gets N] [--compressions none,lz4]
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "varve/table.h"

namespace {

// The keys of varve-table-bench: 16 bytes spread over the key space.
std::string KeyFor(uint64_t i) {
  uint64_t h = i * 0x9E3779B97F4A7C15ull;
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return std::string(b, 16);
}

double ThreadCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Exits with the error unless s is Ok (a missing key is an error too: every key probed exists).
void Require(const varve::Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "varve-table-get-cpu: %s\n", s.ToString().c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"varve-table-get-cpu: table Gets timed in thread CPU time"};
  std::string dir, compressions = "none,lz4,zstd";
  uint64_t keys = 2000000, gets = 1000000;
  bool build = false;
  app.add_option("--dir", dir, "Directory of the tables")->required();
  app.add_option("--keys", keys, "Records (100-byte values)");
  app.add_option("--gets", gets, "Random Gets per round");
  app.add_option("--compressions", compressions, "Tables to read, comma-separated");
  app.add_flag("--build", build, "Write the tables (none, lz4, zstd) instead of reading them");
  CLI11_PARSE(app, argc, argv);

  if (build) {
    std::vector<uint64_t> order(keys);
    for (uint64_t i = 0; i < keys; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [](uint64_t a, uint64_t b) { return KeyFor(a) < KeyFor(b); });
    for (const char* name : {"none", "lz4", "zstd"}) {
      varve::TableOptions o;
      o.compression = *varve::ParseTableCompression(name);
      o.sync = false;
      auto b = varve::TableBuilder::Create(dir + "/" + name, o);
      Require(b.status());
      for (uint64_t i : order) {
        std::string v(100, static_cast<char>('a' + i % 26));
        std::memcpy(v.data(), &i, sizeof i);
        Require((*b)->Add(KeyFor(i), v));
      }
      Require((*b)->Finish());
    }
    return 0;
  }

  std::mt19937_64 rng(42);
  std::vector<std::string> probe(gets);
  for (auto& k : probe) k = KeyFor(rng() % keys);
  std::stringstream names(compressions);
  for (std::string name; std::getline(names, name, ',');) {
    auto t = varve::TableReader::Open(dir + "/" + name);
    Require(t.status());
    std::string v;
    for (const auto& k : probe) (void)(*t)->Get(k, &v);  // untimed: faults the pages in
    double best = 1e30;
    for (int round = 0; round < 3; ++round) {
      const double start = ThreadCpuSeconds();
      for (const auto& k : probe) Require((*t)->Get(k, &v));
      best = std::min(best, ThreadCpuSeconds() - start);
    }
    std::printf("%s %.0f ns/Get (thread CPU time, best of 3 rounds of %llu)\n", name.c_str(),
                best * 1e9 / static_cast<double>(gets), static_cast<unsigned long long>(gets));
  }
  return 0;
}

// varve-index-get-cpu: the hash index alone (src/engine/index.h), built by Puts of N 16-byte keys,
// then rounds of random Gets timed in the process's CPU time, for before/after comparisons of the
// index's memory layout on a loaded machine (bench/RESULTS.md, "Huge pages for the index built by
// Puts"). Prints the Put cost, the index's own memory count per key, the process's AnonHugePages
// and the CPU per Get of each round. Uses only Index::Create and the Index interface, so the same
// file builds against an older tree.
//   varve-index-get-cpu --keys 2000000 [--rounds 5] [--gets 2000000]
#include <time.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "engine/index.h"

namespace {

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Key i: 16 hex digits of a bijective scramble of i (varve-open-bench's keys), without snprintf.
void Key(uint64_t i, char* k) {
  uint64_t v = (i * 0x9E3779B97F4A7C15ull) ^ 0x5bd1e995;
  for (int j = 15; j >= 0; --j) {
    k[j] = "0123456789abcdef"[v & 15];
    v >>= 4;
  }
}

long AnonHugePagesKb() {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU per hash-index Get, index built by Puts"};
  uint64_t keys = 2'000'000, gets = 2'000'000;
  int rounds = 5;
  app.add_option("--keys", keys, "Number of keys put");
  app.add_option("--gets", gets, "Random Gets per round");
  app.add_option("--rounds", rounds, "Timed rounds");
  CLI11_PARSE(app, argc, argv);
  if (keys == 0) keys = 1;

  auto index = varve::Index::Create(varve::IndexKind::kHash);
  char k[16];
  double t0 = CpuSeconds();
  for (uint64_t i = 0; i < keys; ++i) {
    Key(i, k);
    varve::IndexEntry e, old;
    e.segment = static_cast<uint32_t>(1 + i / 2'000'000);
    e.offset = static_cast<uint32_t>(i * 116);
    e.size = 116;
    index->Put(std::string_view(k, sizeof(k)), e, &old);
  }
  const double put_ns = (CpuSeconds() - t0) / static_cast<double>(keys) * 1e9;
  std::printf("keys %llu: put %.1f ns/op, index %.1f B/key, AnonHugePages %ld kB; get ns/op:",
              static_cast<unsigned long long>(keys), put_ns,
              static_cast<double>(index->MemoryBytes()) / static_cast<double>(keys),
              AnonHugePagesKb());
  uint64_t x = 88172645463325252ull, found = 0;
  for (int r = 0; r < rounds; ++r) {
    t0 = CpuSeconds();
    for (uint64_t i = 0; i < gets; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      Key(x % keys, k);
      varve::IndexEntry e;
      found += index->Get(std::string_view(k, sizeof(k)), &e) ? 1 : 0;
    }
    std::printf(" %.1f", (CpuSeconds() - t0) / static_cast<double>(gets) * 1e9);
  }
  std::printf("\n");
  if (found != gets * static_cast<uint64_t>(rounds)) {
    std::fprintf(stderr, "varve-index-get-cpu: %llu keys not found\n",
                 static_cast<unsigned long long>(gets * rounds - found));
    return 1;
  }
  return 0;
}

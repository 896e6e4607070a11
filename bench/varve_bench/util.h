// Measurement helpers: latency histogram, key/value generators, /proc readings, disk usage.
#pragma once

#include <time.h>

#include <array>
#include <cstdint>
#include <string>

namespace varve_bench {

inline uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}

// Log-bucket latency histogram in nanoseconds (HDR-like: 16 sub-buckets per power of two, so a
// percentile is within ~6% of the true value). Fixed array: recording never allocates.
class Histogram {
 public:
  void Record(uint64_t ns) {
    ++counts_[Bucket(ns)];
    ++count_;
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
  }
  uint64_t count() const { return count_; }
  // p in [0, 100]; returns nanoseconds (bucket midpoint).
  double Percentile(double p) const;

 private:
  static constexpr int kSub = 16;
  static size_t Bucket(uint64_t v) {
    if (v < kSub) return v;
    int msb = 63 - __builtin_clzll(v);
    uint64_t sub = (v >> (msb - 4)) & (kSub - 1);
    return static_cast<size_t>((msb - 3) * kSub + sub);
  }
  static double BucketMid(size_t b);
  std::array<uint64_t, 64 * kSub> counts_{};
  uint64_t count_ = 0;
};

// Bijective 64-bit mix (splitmix64 finaliser): key id -> scattered key, never colliding.
inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Key for id: 8 bytes big-endian of Mix(id), then (if key_bytes > 8) hex of the same, so keys
// of any size >= 8 are unique and random in key order. Writes into *key (resized to key_bytes).
void MakeKey(uint64_t id, size_t key_bytes, std::string* key);

// Incompressible values: a view into a large random buffer at a varying offset.
class ValueSource {
 public:
  explicit ValueSource(size_t value_bytes);
  std::string_view Next(uint64_t salt) const;

 private:
  size_t value_bytes_;
  std::string buf_;
};

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x2545F4914F6CDD1Dull + 1) {}
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  uint64_t Uniform(uint64_t n) { return Next() % n; }
};

uint64_t IoWriteBytes();                          // /proc/self/io write_bytes
uint64_t IoReadBytes();                           // /proc/self/io read_bytes
uint64_t PeakRssBytes();                          // VmHWM
uint64_t RssBytes();                              // VmRSS
uint64_t RssFileBytes();                          // RssFile: the part of VmRSS mapping files
uint64_t DiskUsageBytes(const std::string& dir);  // allocated blocks, recursively
bool DropCaches();  // sync + echo 3 > drop_caches; false if not allowed
void RemoveTree(const std::string& dir);

}  // namespace varve_bench

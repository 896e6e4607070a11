#include "util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

namespace varve_bench {

double Histogram::BucketMid(size_t b) {
  if (b < kSub) return static_cast<double>(b);
  int msb = static_cast<int>(b / kSub) + 3;
  uint64_t sub = b % kSub;
  double lo = std::ldexp(1.0, msb) + static_cast<double>(sub) * std::ldexp(1.0, msb - 4);
  return lo + std::ldexp(1.0, msb - 5);
}

double Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  uint64_t want = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  if (want == 0) want = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= want) return BucketMid(i);
  }
  return BucketMid(counts_.size() - 1);
}

void MakeKey(uint64_t id, size_t key_bytes, std::string* key) {
  key->resize(key_bytes);
  uint64_t m = Mix(id);
  char* p = key->data();
  for (int i = 0; i < 8 && i < static_cast<int>(key_bytes); ++i)
    p[i] = static_cast<char>(m >> (56 - 8 * i));
  static const char kHex[] = "0123456789abcdef";
  uint64_t m2 = Mix(m);
  for (size_t i = 8; i < key_bytes; ++i) p[i] = kHex[(m2 >> ((i % 16) * 4)) & 15];
}

ValueSource::ValueSource(size_t value_bytes) : value_bytes_(value_bytes) {
  std::mt19937_64 rng(7);
  buf_.resize(value_bytes + (1 << 20));
  for (size_t i = 0; i < buf_.size(); i += 8) {
    uint64_t r = rng();
    std::memcpy(buf_.data() + i, &r, std::min<size_t>(8, buf_.size() - i));
  }
}

std::string_view ValueSource::Next(uint64_t salt) const {
  size_t off = (Mix(salt) % (1 << 20));
  return std::string_view(buf_.data() + off, value_bytes_);
}

namespace {
uint64_t ProcField(const char* file, const std::string& name) {
  std::ifstream f(file);
  std::string line;
  while (std::getline(f, line)) {
    if (line.compare(0, name.size(), name) == 0) return std::stoull(line.substr(name.size()));
  }
  return 0;
}
}  // namespace

uint64_t IoWriteBytes() { return ProcField("/proc/self/io", "write_bytes:"); }
uint64_t IoReadBytes() { return ProcField("/proc/self/io", "read_bytes:"); }
uint64_t PeakRssBytes() { return ProcField("/proc/self/status", "VmHWM:") * 1024; }
uint64_t RssBytes() { return ProcField("/proc/self/status", "VmRSS:") * 1024; }
uint64_t RssFileBytes() { return ProcField("/proc/self/status", "RssFile:") * 1024; }

uint64_t DiskUsageBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

bool DropCaches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  if (!f) return false;
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

void RemoveTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace varve_bench

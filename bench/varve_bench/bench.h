// What a run measures and how it is configured; shared by the workloads, fio and the report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine.h"
#include "util.h"

namespace varve_bench {

struct Args {
  std::vector<std::string> workloads;
  std::vector<std::string> engines;
  std::string dir = "/tmp/varve-bench";
  // small
  uint64_t small_keys = 2'000'000;
  size_t small_key_bytes = 16, small_value_bytes = 100;
  // halodb
  uint64_t halodb_keys = 20'000;
  size_t halodb_key_bytes = 8, halodb_value_bytes = 10'000;
  uint64_t halodb_reads = 200'000;
  int mixed_readers = 4;
  double mixed_seconds = 5;
  // halodb-ltm (larger than memory)
  uint64_t ltm_keys = 100'000;
  uint64_t ltm_memory_mb = 256;
  double ltm_seconds = 10;
  int ltm_threads = 32;
  // scan
  uint64_t scan_keys = 1'000'000;
  uint64_t range_scans = 20'000;
  uint64_t range_length = 100;
  // recovery
  uint64_t recovery_keys = 2'000'000;
  // kill -9 once this many puts are acknowledged (the same work for every engine), or after
  // kill_after_seconds at the latest.
  uint64_t kill_after_puts = 300'000;
  double kill_after_seconds = 30;
  // sync
  uint64_t sync_keys = 100'000;
  double sync_seconds = 3;
  int group_threads = 32;
  // fio
  bool fio = true;
  uint64_t fio_size_mb = 1024;
  double fio_seconds = 5;
  bool drop_caches = true;
  bool keep = false;
  std::string out;
};

struct PhaseResult {
  std::string workload, phase, engine, settings;
  uint64_t ops = 0;
  double seconds = 0;
  double ops_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
  double write_amp = -1;    // disk bytes written / user bytes written; -1 = not measured
  double space_amp = -1;    // disk bytes used / live user bytes
  double peak_rss_mb = -1;  // VmHWM of the process that ran the phase
  double index_bytes_per_key = -1;
  // The same, counting anonymous memory only (Varve's index; not the data file pages a Get maps).
  double index_anon_bytes_per_key = -1;
  double read_bytes_per_op = -1;  // disk bytes read per operation (/proc/self/io)
  // CPU time of the threads that ran the operations (their thread CPU clocks) per operation:
  // unlike ops/s, it hardly moves when other processes take turns on the same cores.
  double cpu_us_per_op = -1;
  std::string note;
};

// Device limits measured with fio in the same run (0 = not measured).
struct Device {
  size_t read_block = 0;
  double randread_qd1_iops = 0, randread_qd1_p50_us = 0, randread_qd1_p99_us = 0;
  double randread_qd32_iops = 0, randread_qd32_p99_us = 0;
  double fdatasync_per_s = 0, fdatasync_p50_us = 0;
  double seqwrite_bytes_per_s = 0;
  std::string note;
};

Device RunFio(const Args& args);

// Runs one workload for one engine (in the calling process; the caller forks).
void RunWorkload(const Args& args, const std::string& workload, const std::string& engine,
                 const std::string& dir, std::vector<PhaseResult>* out);

std::string Report(const Args& args, const Device& dev, const std::vector<PhaseResult>& results,
                   const std::string& header);

// Memory limit for the larger-than-memory run: which method is in use ("" = none).
std::string MemoryLimitMethod();

}  // namespace varve_bench

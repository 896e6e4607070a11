// Decides, per thread, how a read larger than a page that a file mapping could serve is made.
// Copying from the mapping is cheapest when every page is cached; a page that is not is faulted
// in from the disk on its own (one request per page, one after the other), where pread makes one
// request for the whole read. Checking first (mincore) costs a system call, about as much as
// copying a cached 10 KB record, so the check is skipped where its answer is predictable:
//
// - after a check finds a page missing, the next kSkipAfterMiss reads use pread unchecked (data
//   larger than memory: one mincore per that many reads, and its pages stay unmapped);
// - once trust_after checks in a row found every page cached, the next kTrustedReads reads use
//   the mapping unchecked (data that fits in memory: one mincore per that many reads). A trusted
//   read that was slow (its pages had been evicted meanwhile) or failed ends the trust, restarts
//   the streak and doubles trust_after, so data that only partly fits in memory soon stops being
//   trusted (each such read costs a page-by-page fault); a trusted run with no slow read halves
//   it again.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace varve {

class ResidencyGuess {
 public:
  static constexpr uint32_t kSkipAfterMiss = 64;
  static constexpr uint32_t kTrustedReads = 32;
  static constexpr uint32_t kMinTrustAfter = 8;
  static constexpr uint32_t kMaxTrustAfter = 1024;
  // A cached read of up to 64 KiB (a copy, a few minor faults) takes a few microseconds; one
  // that waits for the disk takes tens.
  static constexpr std::chrono::microseconds kSlowRead{40};

  enum class Plan {
    kPread,  // do not use the mapping
    kCheck,  // use the mapping if every page is cached; report the answer with Checked
    kTrust,  // use the mapping; report how it went with Trusted
  };

  Plan Next() {
    if (skip_ > 0) {
      --skip_;
      return Plan::kPread;
    }
    if (trusted_ > 0) {
      --trusted_;
      return Plan::kTrust;
    }
    return Plan::kCheck;
  }

  void Checked(bool all_cached) {
    if (!all_cached) {
      streak_ = 0;
      skip_ = kSkipAfterMiss;
      return;
    }
    streak_ = std::min(streak_ + 1, kMaxTrustAfter);
    if (streak_ >= trust_after_) trusted_ = kTrustedReads;
  }

  // ok: the read succeeded in less than kSlowRead. No pread run after a slow one: a false alarm
  // (the thread was preempted during the copy) would cost kSkipAfterMiss preads; the checks
  // that follow find out whether pages are missing.
  void Trusted(bool ok) {
    if (!ok) {
      trusted_ = 0;
      streak_ = 0;
      trust_after_ = std::min(trust_after_ * 2, kMaxTrustAfter);
    } else if (trusted_ == 0) {
      trust_after_ = std::max(trust_after_ / 2, kMinTrustAfter);
    }
  }

  bool trusting() const { return trusted_ > 0; }
  uint32_t trust_after() const { return trust_after_; }

 private:
  uint32_t skip_ = 0;     // reads left that use pread unchecked
  uint32_t trusted_ = 0;  // reads left that use the mapping unchecked
  uint32_t streak_ = 0;   // checks in a row that found every page cached
  uint32_t trust_after_ = kMinTrustAfter;
};

// The guess of this thread's reads (of every file: whether data fits in memory is a property of
// the workload more than of one file).
inline constinit thread_local ResidencyGuess tls_residency_guess;

}  // namespace varve

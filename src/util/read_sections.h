// ReadSections: lets readers use objects without writing any cache line another thread writes,
// and lets a writer wait until every read that might still see an object it unpublished is over
// (a grace period, as in RCU).
//
// Readers: `ReadSections::Section s(sections);` then load the published pointer (seq_cst or
// acquire) and use what it reaches until s ends. A section only increments and decrements a
// counter in this thread's own cache line (threads beyond kSlots share lines: still correct).
// Writers: publish the new pointer (a seq_cst store), then Wait(); afterwards no section can
// still use what the old pointer reached. Wait must not be called inside a section of the same
// ReadSections (it would wait for itself). Sections must be short: Wait spins until they end.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

namespace varve {

class ReadSections {
 public:
  static constexpr uint32_t kSlots = 64;

  class Section {
   public:
    explicit Section(ReadSections& rs)
        : counter_(&rs.slots_[ThreadSlot()].count[rs.phase_.load(std::memory_order_relaxed) & 1]) {
      // seq_cst: the increment is ordered before the reader's later load of the published
      // pointer (a store-load order, which acquire/release alone would not give).
      counter_->fetch_add(1, std::memory_order_seq_cst);
    }
    ~Section() { counter_->fetch_sub(1, std::memory_order_release); }
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

   private:
    std::atomic<uint64_t>* counter_;
  };

  // Returns once every section that began before the call has ended. Call after publishing
  // (seq_cst) the pointer readers load. A section that began later loads the new pointer.
  //
  // Why both counters of each slot are drained: the counter a reader increments depends on the
  // phase it read, possibly long before; seeing each counter at zero once after publishing means
  // every section that incremented it earlier has ended, and any that increments it later loads
  // the new pointer. Flipping the phase first lets the counter being waited on drain while new
  // sections use the other one.
  void Wait() {
    std::lock_guard lock(wait_mu_);
    for (int round = 0; round < 2; ++round) {
      uint32_t old_phase = phase_.fetch_add(1, std::memory_order_seq_cst) & 1;
      for (Slot& s : slots_) {
        for (int spins = 0; s.count[old_phase].load(std::memory_order_seq_cst) != 0; ++spins) {
          if (spins > 64) std::this_thread::yield();
        }
      }
    }
  }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> count[2] = {0, 0};
  };

  // Threads get slots round-robin, once: one thread per slot for up to kSlots threads.
  static uint32_t ThreadSlot() {
    static std::atomic<uint32_t> next{0};
    thread_local uint32_t slot = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
    return slot;
  }

  Slot slots_[kSlots];
  alignas(64) std::atomic<uint32_t> phase_{0};
  std::mutex wait_mu_;
};

}  // namespace varve

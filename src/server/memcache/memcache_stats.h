// The memcached "stats" counters (cmd_get, get_hits, ...): an enum with a name table, counted
// per connection without atomics and folded into process-wide totals once per Process call.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace varve::server {
struct ServerContext;
}

namespace varve::server::memcache {

enum class Counter : uint8_t {
  kCmdGet = 0,  // keys looked up by get/gets/gat/gats/mg
  kCmdSet,      // storage requests (set/add/replace/append/prepend/cas/ms)
  kCmdFlush,
  kCmdTouch,  // keys touched by touch/gat/gats/mg T
  kCmdMeta,   // meta commands
  kGetHits,
  kGetMisses,
  kDeleteMisses,
  kDeleteHits,
  kIncrMisses,
  kIncrHits,
  kDecrMisses,
  kDecrHits,
  kCasMisses,
  kCasHits,
  kCasBadval,
  kTouchHits,
  kTouchMisses,
  kStoreTooLarge,
  kTotalItems,  // items stored
  kCount,
};
constexpr size_t kCounters = static_cast<size_t>(Counter::kCount);
// memcached's stat name of each counter.
const char* CounterName(Counter c);

// One connection's counts since its last Flush.
class LocalCounters {
 public:
  void Add(Counter c, uint64_t n = 1) {
    counts_[static_cast<size_t>(c)] += n;
    dirty_ = true;
  }
  // Adds the counts to the process-wide totals and clears them.
  void Flush();

 private:
  std::array<uint64_t, kCounters> counts_{};
  bool dirty_ = false;
};

// Process-wide totals since start (or the last "stats reset").
uint64_t CounterTotal(Counter c);
void ResetCounters();

// The version memcached clients see ("VERSION ...", "STAT version").
extern const char kVersion[];

// "STAT name value\r\n" lines of the general "stats" reply, without the final END.
void AppendGeneralStats(ServerContext* ctx, std::string* out);
// "stats settings".
void AppendSettingsStats(ServerContext* ctx, std::string* out);

}  // namespace varve::server::memcache

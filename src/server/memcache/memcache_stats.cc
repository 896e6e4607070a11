#include "server/memcache/memcache_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "server/memcache/memcache_parse.h"
#include "server/protocol.h"
#include "util/clock.h"

namespace varve::server::memcache {
namespace {

constexpr const char* kCounterNames[kCounters] = {
    "cmd_get",    "cmd_set",     "cmd_flush",     "cmd_touch",       "cmd_meta",
    "get_hits",   "get_misses",  "delete_misses", "delete_hits",     "incr_misses",
    "incr_hits",  "decr_misses", "decr_hits",     "cas_misses",      "cas_hits",
    "cas_badval", "touch_hits",  "touch_misses",  "store_too_large", "total_items",
};

std::array<std::atomic<uint64_t>, kCounters> g_totals{};

void Stat(std::string* out, std::string_view name, uint64_t v) {
  out->append("STAT ");
  out->append(name);
  out->push_back(' ');
  AppendU64(out, v);
  out->append("\r\n");
}

void Stat(std::string* out, std::string_view name, std::string_view v) {
  out->append("STAT ");
  out->append(name);
  out->push_back(' ');
  out->append(v);
  out->append("\r\n");
}

std::string Seconds(const timeval& tv) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%ld.%06ld", static_cast<long>(tv.tv_sec),
                static_cast<long>(tv.tv_usec));
  return buf;
}

}  // namespace

const char kVersion[] = "1.6.0-varve-0.1.0";

const char* CounterName(Counter c) { return kCounterNames[static_cast<size_t>(c)]; }

void LocalCounters::Flush() {
  if (!dirty_) return;
  for (size_t i = 0; i < kCounters; ++i) {
    if (counts_[i] != 0) {
      g_totals[i].fetch_add(counts_[i], std::memory_order_relaxed);
      counts_[i] = 0;
    }
  }
  dirty_ = false;
}

uint64_t CounterTotal(Counter c) {
  return g_totals[static_cast<size_t>(c)].load(std::memory_order_relaxed);
}

void ResetCounters() {
  for (auto& t : g_totals) t.store(0, std::memory_order_relaxed);
}

void AppendGeneralStats(ServerContext* ctx, std::string* out) {
  const uint64_t now_ms = NowUnixMs();
  const uint64_t uptime_s = now_ms > ctx->start_unix_ms && ctx->start_unix_ms != 0
                                ? (now_ms - ctx->start_unix_ms) / 1000
                                : 0;
  Stat(out, "pid", static_cast<uint64_t>(getpid()));
  Stat(out, "uptime", uptime_s);
  Stat(out, "time", now_ms / 1000);
  Stat(out, "version", kVersion);
  Stat(out, "pointer_size", static_cast<uint64_t>(sizeof(void*) * 8));
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  Stat(out, "rusage_user", Seconds(usage.ru_utime));
  Stat(out, "rusage_system", Seconds(usage.ru_stime));
  const ServerOptions* o = ctx->options;
  if (o != nullptr) Stat(out, "max_connections", o->max_connections);
  if (ctx->metrics != nullptr) {
    Stat(out, "curr_connections", ctx->metrics->connections_open(Protocol::kMemcached));
    Stat(out, "total_connections", ctx->metrics->connections_total(Protocol::kMemcached));
  }
  for (size_t i = 0; i < kCounters; ++i) {
    if (static_cast<Counter>(i) == Counter::kTotalItems) continue;
    Stat(out, kCounterNames[i], g_totals[i].load(std::memory_order_relaxed));
  }
  if (o != nullptr) {
    uint32_t threads = o->threads != 0 ? o->threads : std::thread::hardware_concurrency();
    Stat(out, "threads", threads);
    Stat(out, "item_size_max", o->max_value_bytes);
  }
  Stats st = ctx->db->GetStats();
  Stat(out, "curr_items", st.keys);
  Stat(out, "total_items", CounterTotal(Counter::kTotalItems));
  Stat(out, "bytes", st.live_bytes);
  Stat(out, "evictions", uint64_t{0});
  // The engine's own statistics, named as in /metrics.
  Stat(out, "varve_keys", st.keys);
  Stat(out, "varve_live_bytes", st.live_bytes);
  Stat(out, "varve_dead_bytes", st.dead_bytes);
  Stat(out, "varve_segments", st.segments);
  Stat(out, "varve_sealed_segments", st.sealed_segments);
  Stat(out, "varve_disk_bytes", st.disk_bytes);
  Stat(out, "varve_index_memory_bytes", st.index_memory_bytes);
  Stat(out, "varve_tables", st.tables);
  Stat(out, "varve_table_entries", st.table_entries);
  Stat(out, "varve_compactions", st.compactions);
  Stat(out, "varve_compaction_bytes_written", st.compaction_bytes_written);
  Stat(out, "varve_compaction_bytes_reclaimed", st.compaction_bytes_reclaimed);
  Stat(out, "varve_user_bytes_written", st.user_bytes_written);
  Stat(out, "varve_log_bytes_written", st.log_bytes_written);
  Stat(out, "varve_puts", st.puts);
  Stat(out, "varve_deletes", st.deletes);
  Stat(out, "varve_gets", st.gets);
  Stat(out, "varve_get_misses", st.get_misses);
  Stat(out, "varve_syncs", st.syncs);
  Stat(out, "varve_write_groups", st.write_groups);
  Stat(out, "varve_last_sequence", st.last_sequence);
  Stat(out, "varve_durable_sequence", st.durable_sequence);
  char wa[32];
  std::snprintf(wa, sizeof(wa), "%.3f", st.write_amplification);
  Stat(out, "varve_write_amplification", wa);
}

void AppendSettingsStats(ServerContext* ctx, std::string* out) {
  const ServerOptions* o = ctx->options;
  if (o == nullptr) return;
  Stat(out, "maxconns", o->max_connections);
  Stat(out, "tcpport", o->memcached_port);
  Stat(out, "inter", o->bind);
  Stat(out, "domain_socket", o->memcached_socket.empty() ? "NULL" : o->memcached_socket);
  Stat(out, "evictions", "off");
  Stat(out, "cas_enabled", "yes");
  Stat(out, "num_threads", o->threads);
  Stat(out, "item_size_max", o->max_value_bytes);
  Stat(out, "max_key_bytes", std::min<uint64_t>(o->max_key_bytes, kMaxKeyLength));
  Stat(out, "max_request_bytes", o->max_request_bytes);
  Stat(out, "max_output_bytes", o->max_output_bytes);
  Stat(out, "request_timeout_ms", o->request_timeout_ms);
  Stat(out, "data_dir", o->data_dir);
}

}  // namespace varve::server::memcache

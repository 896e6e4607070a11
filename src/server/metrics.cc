#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace varve::server {
namespace {

const char* DisconnectName(size_t i) {
  static const char* kNames[kDisconnectReasons] = {"client",  "protocol_error", "too_large",
                                                   "timeout", "shutdown",       "io_error"};
  return kNames[i];
}

// Label values escape backslash, double quote and newline.
std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Line(std::string* out, const std::string& name, const std::string& labels, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", value);
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " ";
  *out += buf;
  *out += "\n";
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kRedis:
      return "redis";
    case Protocol::kMemcached:
      return "memcached";
    case Protocol::kHttp:
      return "http";
  }
  return "unknown";
}

int Metrics::RegisterCommand(Protocol p, std::string_view name) {
  PerProtocol& pp = At(p);
  for (size_t i = 0; i < pp.commands.size(); ++i) {
    if (pp.commands[i].name == name) return static_cast<int>(i);
  }
  pp.commands.emplace_back();
  pp.commands.back().name = std::string(name);
  return static_cast<int>(pp.commands.size() - 1);
}

void Metrics::CountRequest(Protocol p, int command, uint64_t latency_us, bool error) {
  PerProtocol& pp = At(p);
  if (command >= 0 && static_cast<size_t>(command) < pp.commands.size()) {
    Command& c = pp.commands[static_cast<size_t>(command)];
    c.calls.fetch_add(1, std::memory_order_relaxed);
    if (error) c.errors.fetch_add(1, std::memory_order_relaxed);
  }
  size_t b = static_cast<size_t>(
      std::lower_bound(kLatencyBucketsUs.begin(), kLatencyBucketsUs.end(), latency_us) -
      kLatencyBucketsUs.begin());
  pp.latency[b].fetch_add(1, std::memory_order_relaxed);
  pp.latency_sum_us.fetch_add(latency_us, std::memory_order_relaxed);
}

uint64_t Metrics::requests(Protocol p) const {
  uint64_t n = 0;
  for (const Command& c : At(p).commands) n += c.calls.load();
  return n;
}

uint64_t Metrics::errors(Protocol p) const {
  uint64_t n = 0;
  for (const Command& c : At(p).commands) n += c.errors.load();
  return n;
}

std::string Metrics::RenderPrometheus(const Stats& st) const {
  std::string out;
  auto each_protocol = [&](auto fn) {
    for (size_t i = 0; i < kProtocols; ++i) {
      fn(static_cast<Protocol>(i), protocols_[i],
         std::string("protocol=\"") + ProtocolName(static_cast<Protocol>(i)) + "\"");
    }
  };
  Header(&out, "varve_requests_total", "counter", "Requests by protocol and command.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    for (const Command& c : pp.commands) {
      Line(&out, "varve_requests_total", l + ",command=\"" + Escape(c.name) + "\"",
           static_cast<double>(c.calls.load()));
    }
  });
  Header(&out, "varve_request_errors_total", "counter",
         "Requests answered with an error, by protocol and command.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    for (const Command& c : pp.commands) {
      Line(&out, "varve_request_errors_total", l + ",command=\"" + Escape(c.name) + "\"",
           static_cast<double>(c.errors.load()));
    }
  });
  Header(&out, "varve_malformed_requests_total", "counter",
         "Requests that broke the protocol (answered with a protocol error).");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    Line(&out, "varve_malformed_requests_total", l, static_cast<double>(pp.malformed.load()));
  });
  Header(&out, "varve_received_bytes_total", "counter", "Bytes received from clients.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    Line(&out, "varve_received_bytes_total", l, static_cast<double>(pp.bytes_in.load()));
  });
  Header(&out, "varve_sent_bytes_total", "counter", "Bytes sent to clients.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    Line(&out, "varve_sent_bytes_total", l, static_cast<double>(pp.bytes_out.load()));
  });
  Header(&out, "varve_connections", "gauge", "Open client connections.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    Line(&out, "varve_connections", l, static_cast<double>(pp.connections_open.load()));
  });
  Header(&out, "varve_connections_total", "counter", "Client connections accepted.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    Line(&out, "varve_connections_total", l, static_cast<double>(pp.connections_total.load()));
  });
  Header(&out, "varve_connections_rejected_total", "counter",
         "Connections refused because max_connections was reached.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    Line(&out, "varve_connections_rejected_total", l,
         static_cast<double>(pp.connections_rejected.load()));
  });
  Header(&out, "varve_disconnects_total", "counter", "Closed connections by reason.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    for (size_t r = 0; r < kDisconnectReasons; ++r) {
      Line(&out, "varve_disconnects_total", l + ",reason=\"" + DisconnectName(r) + "\"",
           static_cast<double>(pp.disconnects[r].load()));
    }
  });
  Header(&out, "varve_request_duration_seconds", "histogram",
         "Time from a request's last byte to its reply being queued.");
  each_protocol([&](Protocol, const PerProtocol& pp, const std::string& l) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kLatencyBucketsUs.size(); ++b) {
      cumulative += pp.latency[b].load();
      std::string le = b < kLatencyBucketsUs.size()
                           ? std::to_string(static_cast<double>(kLatencyBucketsUs[b]) / 1e6)
                           : "+Inf";
      Line(&out, "varve_request_duration_seconds_bucket", l + ",le=\"" + le + "\"",
           static_cast<double>(cumulative));
    }
    Line(&out, "varve_request_duration_seconds_sum", l,
         static_cast<double>(pp.latency_sum_us.load()) / 1e6);
    Line(&out, "varve_request_duration_seconds_count", l, static_cast<double>(cumulative));
  });
  auto gauge = [&](const char* name, const char* help, double v) {
    Header(&out, name, "gauge", help);
    Line(&out, name, "", v);
  };
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    Header(&out, name, "counter", help);
    Line(&out, name, "", static_cast<double>(v));
  };
  gauge("varve_keys", "Live keys in the index.", static_cast<double>(st.keys));
  gauge("varve_live_bytes", "Bytes of records the index points at.",
        static_cast<double>(st.live_bytes));
  gauge("varve_dead_bytes", "Bytes of overwritten, deleted or expired records.",
        static_cast<double>(st.dead_bytes));
  gauge("varve_segments", "Segment files.", static_cast<double>(st.segments));
  gauge("varve_disk_bytes", "Segment bytes on disk.", static_cast<double>(st.disk_bytes));
  gauge("varve_index_memory_bytes", "Memory held by the index, keys included.",
        static_cast<double>(st.index_memory_bytes));
  gauge("varve_tables", "Attached immutable tables.", static_cast<double>(st.tables));
  gauge("varve_table_entries", "Records in the attached tables, tombstones included.",
        static_cast<double>(st.table_entries));
  counter("varve_compactions_total", "Segments compacted.", st.compactions);
  counter("varve_compaction_written_bytes_total", "Bytes written by compaction.",
          st.compaction_bytes_written);
  counter("varve_user_written_bytes_total", "Key and value bytes written by clients.",
          st.user_bytes_written);
  counter("varve_log_written_bytes_total", "Record bytes appended by writes.",
          st.log_bytes_written);
  counter("varve_syncs_total", "fdatasync calls on the log.", st.syncs);
  gauge("varve_write_amplification", "(log + compaction bytes) / user bytes.",
        st.write_amplification);
  gauge("varve_last_sequence", "Sequence number of the newest write.",
        static_cast<double>(st.last_sequence));
  gauge("varve_durable_sequence", "Writes up to this sequence number are on disk.",
        static_cast<double>(st.durable_sequence));
  return out;
}

}  // namespace varve::server

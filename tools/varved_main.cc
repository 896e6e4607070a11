// varved: the Varve server. One store behind Redis RESP, memcached (text and meta) and
// HTTP/JSON, on TCP ports and Unix sockets. See README.md and docs/protocols/.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "server/server.h"
#include "util/logging.h"

namespace {

int Run(int argc, char** argv) {
  using varve::server::ServerOptions;
  ServerOptions o;
  o.engine.durability = varve::Durability::kInterval;

  CLI::App app{
      "varved: the Varve key-value server. One store behind Redis RESP, memcached (text and\n"
      "meta) and HTTP/JSON at once, on TCP ports and Unix sockets."};
  app.set_config("--config", "", "Read options from this TOML/INI file (flags win)");
  app.add_option("-d,--data-dir", o.data_dir, "Store directory (created if missing)")
      ->capture_default_str();
  app.add_option("--bind", o.bind, "Address the TCP listeners bind to")->capture_default_str();
  app.add_option("--redis-port", o.redis_port, "Redis RESP port; 0 = off")->capture_default_str();
  app.add_option("--memcached-port", o.memcached_port, "memcached port; 0 = off")
      ->capture_default_str();
  app.add_option("--http-port", o.http_port, "HTTP/JSON port; 0 = off")->capture_default_str();
  app.add_option("--redis-socket", o.redis_socket, "Unix socket path for RESP (default: none)");
  app.add_option("--memcached-socket", o.memcached_socket,
                 "Unix socket path for memcached (default: none)");
  app.add_option("--http-socket", o.http_socket, "Unix socket path for HTTP (default: none)");
  app.add_option("--threads", o.threads, "I/O threads; 0 = one per CPU")->capture_default_str();

  std::string durability = "interval", index = "hash";
  uint64_t segment_mb = o.engine.segment_size_bytes >> 20;
  app.add_option("--durability", durability,
                 "none: write(2) before replying; interval: + fdatasync every --sync-interval-ms;\n"
                 "batch: + fdatasync every --sync-batch-writes writes or --sync-interval-ms;\n"
                 "sync: reply after fdatasync (group commit)")
      ->check(CLI::IsMember({"none", "interval", "batch", "sync"}))
      ->capture_default_str();
  app.add_option("--sync-interval-ms", o.engine.sync_interval_ms,
                 "interval/batch: longest a write stays unsynced")
      ->capture_default_str();
  app.add_option("--sync-batch-writes", o.engine.sync_batch_writes,
                 "batch: sync after this many writes")
      ->capture_default_str();
  app.add_option("--index", index, "hash, or ordered for key-ordered scans")
      ->check(CLI::IsMember({"hash", "ordered"}))
      ->capture_default_str();
  app.add_option("--segment-size-mb", segment_mb, "Seal segments at this size")
      ->check(CLI::Range(1, 2048))
      ->capture_default_str();
  app.add_option("--compaction-live-ratio", o.engine.compaction_live_ratio,
                 "Compact segments whose live bytes fall below this fraction")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  app.add_option("--max-key-bytes", o.max_key_bytes, "Largest key accepted")->capture_default_str();
  app.add_option("--max-value-bytes", o.max_value_bytes, "Largest value accepted")
      ->capture_default_str();
  app.add_option("--max-request-bytes", o.max_request_bytes,
                 "Largest request (a client announcing more is disconnected)")
      ->capture_default_str();
  app.add_option("--max-output-bytes", o.max_output_bytes,
                 "Replies queued per connection before it stops reading (pipelining)")
      ->capture_default_str();
  app.add_option("--request-timeout-ms", o.request_timeout_ms,
                 "A client stalled inside one request this long is disconnected")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "Connections beyond this are refused")
      ->capture_default_str();
  app.add_option("--shutdown-timeout-ms", o.shutdown_timeout_ms,
                 "On SIGTERM, how long in-flight requests may take")
      ->capture_default_str();
  app.footer(
      "\nLogs one line per listener once it accepts connections. SIGTERM or SIGINT: stop\n"
      "accepting, finish in-flight requests, sync the log, exit 0.\n"
      "\nExample: varved --data-dir data --redis-port 6379 --memcached-port 11211 "
      "--http-port 8080");
  CLI11_PARSE(app, argc, argv);

  o.engine.durability = durability == "none"    ? varve::Durability::kNone
                        : durability == "batch" ? varve::Durability::kBatch
                        : durability == "sync"  ? varve::Durability::kSync
                                                : varve::Durability::kInterval;
  o.engine.index = index == "ordered" ? varve::IndexKind::kOrdered : varve::IndexKind::kHash;
  o.engine.segment_size_bytes = segment_mb << 20;

  auto server = varve::server::Server::Start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "varved: %s\n", server.status().ToString().c_str());
    return 1;
  }
  varve::LogInfo("serving " + o.data_dir + " (durability " + durability + ", index " + index + ")");
  varve::Status s = (*server)->Wait();
  return s.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }

// mc-load: a memcached load client (text and meta protocol). N connections spread over T event-loop
// threads (epoll); each connection sends a batch of P pipelined requests in one write, reads all P
// replies, checks each one, then sends the next batch. Runs for a duration or a request count over
// K keys with V-byte values, and prints ops/s and the p50/p99 latency of a batch.
//
//   mc-load --port 11211 --mode get -c 50 -P 16 --keys 100000 --value-bytes 100 --seconds 5
//
// Modes: set (`set k 0 0 V` -> STORED), get (`get k` -> VALUE k f V + data + END, or END),
// ms (`ms k V T0` -> HD), mg (`mg k v` -> VA V + data, or EN). get and mg preload every key first
// (with set / ms), so a miss is unexpected and reported. Every reply is parsed: a wrong status, a
// wrong key, length or value, or a malformed reply counts as an error; a malformed reply or a
// closed connection also ends that connection. Exit status 1 if any error was seen.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Mode { kSet, kGet, kMs, kMg };

struct Config {
  std::string host = "127.0.0.1";
  uint16_t port = 11211;
  Mode mode = Mode::kGet;
  std::string mode_name = "get";
  int connections = 50;
  int pipeline = 16;
  int threads = 1;
  uint64_t keys = 100'000;
  size_t key_bytes = 16;
  std::string key_prefix = "mc:";
  size_t value_bytes = 100;
  double seconds = 5;
  uint64_t requests = 0;  // > 0: stop after this many instead of after `seconds`
  bool preload = true;
  bool csv = false;
  uint64_t seed = 1;
};

// What a run measured (summed over threads).
struct Tally {
  uint64_t ops = 0;
  uint64_t errors = 0;
  uint64_t misses = 0;
  uint64_t dead_connections = 0;
  std::vector<uint32_t> batch_us;  // latency of each batch, microseconds
  std::string first_error;

  void Merge(Tally& o) {
    ops += o.ops;
    errors += o.errors;
    misses += o.misses;
    dead_connections += o.dead_connections;
    batch_us.insert(batch_us.end(), o.batch_us.begin(), o.batch_us.end());
    if (first_error.empty()) first_error = std::move(o.first_error);
  }
};

// Where the keys of the next batch come from: random (shared by nothing) or a sequence shared by
// every thread (preload: each key exactly once).
struct KeySource {
  bool sequential = false;
  std::atomic<uint64_t>* next = nullptr;  // sequential: next key index to hand out
  uint64_t keys = 0;
};

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class KeyFormatter {
 public:
  explicit KeyFormatter(const Config& c) : prefix_(c.key_prefix) {
    digits_ = c.key_bytes > prefix_.size() ? c.key_bytes - prefix_.size() : 1;
    if (digits_ > 20) digits_ = 20;
  }
  // Appends key number i to out.
  void Append(std::string& out, uint64_t i) const {
    out += prefix_;
    char buf[24];
    for (size_t d = digits_; d-- > 0;) {
      buf[d] = static_cast<char>('0' + i % 10);
      i /= 10;
    }
    out.append(buf, digits_);
  }
  size_t size() const { return prefix_.size() + digits_; }

 private:
  std::string prefix_;
  size_t digits_;
};

// Replies are parsed in place; each parse either consumes one whole reply or asks for more bytes.
enum class Parse { kNeedMore, kOk, kMiss, kErrorReply, kBad };

struct Connection {
  int fd = -1;
  bool dead = false;
  std::string out;  // the current batch
  size_t out_off = 0;
  std::vector<char> in;
  size_t in_begin = 0, in_end = 0;
  std::vector<std::string> batch_keys;  // get: the key each pending reply is for
  int sent = 0;                         // requests in the current batch
  int answered = 0;                     // replies to it parsed so far
  Clock::time_point batch_start;
  uint64_t rng = 0;
  bool want_write = false;
};

class Worker {
 public:
  Worker(const Config& c, Mode mode, const KeySource& keys, int connections, uint64_t seed)
      : c_(c), mode_(mode), keys_(keys), fmt_(c) {
    conns_.resize(connections);
    for (size_t i = 0; i < conns_.size(); ++i) {
      conns_[i].rng = seed * 1000003 + i;
      conns_[i].in.resize(64 * 1024);
    }
    value_.resize(c.value_bytes);
    for (size_t i = 0; i < value_.size(); ++i) value_[i] = static_cast<char>('a' + i % 26);
  }

  ~Worker() {
    for (Connection& conn : conns_) {
      if (conn.fd >= 0) ::close(conn.fd);
    }
    if (ep_ >= 0) ::close(ep_);
  }

  // Connect() opens every connection; Run() then goes on until the deadline, or until the key
  // source or the request budget is exhausted.
  bool Connect(std::string* err);
  void Run(Clock::time_point deadline, std::atomic<int64_t>* budget);

  Tally& tally() { return tally_; }

 private:
  void Error(Connection& conn, const std::string& what, bool fatal) {
    ++tally_.errors;
    if (tally_.first_error.empty()) tally_.first_error = what;
    if (fatal) Kill(conn);
  }
  void Kill(Connection& conn) {
    if (conn.dead) return;
    conn.dead = true;
    ++tally_.dead_connections;
    --live_;
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, conn.fd, nullptr);
  }
  bool StartBatch(Connection& conn, std::atomic<int64_t>* budget);
  void Flush(Connection& conn);
  void OnReadable(Connection& conn, std::atomic<int64_t>* budget, Clock::time_point deadline);
  Parse ParseOne(Connection& conn, size_t* consumed);
  void SetWriteInterest(Connection& conn, bool on);

  const Config& c_;
  Mode mode_;
  KeySource keys_;
  KeyFormatter fmt_;
  std::string value_;
  std::vector<Connection> conns_;
  int ep_ = -1;
  int live_ = 0;
  Tally tally_;
  const char* why_ = "";  // what ParseOne found wrong, for kErrorReply / kBad
};

bool Worker::Connect(std::string* err) {
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    *err = std::string("epoll_create1: ") + std::strerror(errno);
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(c_.host.c_str(), std::to_string(c_.port).c_str(), &hints, &res);
  if (rc != 0) {
    *err = c_.host + ": " + ::gai_strerror(rc);
    return false;
  }
  for (size_t i = 0; i < conns_.size(); ++i) {
    Connection& conn = conns_[i];
    conn.fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn.fd < 0 || ::connect(conn.fd, res->ai_addr, res->ai_addrlen) != 0) {
      *err = "connect to " + c_.host + ":" + std::to_string(c_.port) + ": " + std::strerror(errno);
      ::freeaddrinfo(res);
      return false;
    }
    int one = 1;
    ::setsockopt(conn.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(conn.fd, F_SETFL, ::fcntl(conn.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, conn.fd, &ev);
  }
  ::freeaddrinfo(res);
  live_ = static_cast<int>(conns_.size());
  return true;
}

void Worker::SetWriteInterest(Connection& conn, bool on) {
  if (conn.want_write == on) return;
  conn.want_write = on;
  epoll_event ev{};
  ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(&conn - conns_.data());
  ::epoll_ctl(ep_, EPOLL_CTL_MOD, conn.fd, &ev);
}

// Builds and sends the next batch; false when there is nothing left to send.
bool Worker::StartBatch(Connection& conn, std::atomic<int64_t>* budget) {
  int n = c_.pipeline;
  if (budget != nullptr) {
    int64_t left = budget->fetch_sub(n, std::memory_order_relaxed);
    if (left <= 0) return false;
    if (left < n) n = static_cast<int>(left);
  }
  uint64_t first = 0;
  if (keys_.sequential) {
    first = keys_.next->fetch_add(n, std::memory_order_relaxed);
    if (first >= keys_.keys) return false;
    n = static_cast<int>(std::min<uint64_t>(n, keys_.keys - first));
  }
  conn.out.clear();
  conn.out_off = 0;
  if (mode_ == Mode::kGet) conn.batch_keys.resize(n);
  std::string len = std::to_string(c_.value_bytes);
  for (int i = 0; i < n; ++i) {
    uint64_t k = keys_.sequential ? first + i : SplitMix(conn.rng) % keys_.keys;
    switch (mode_) {
      case Mode::kSet:
        conn.out += "set ";
        fmt_.Append(conn.out, k);
        conn.out += " 0 0 ";
        conn.out += len;
        conn.out += "\r\n";
        conn.out += value_;
        conn.out += "\r\n";
        break;
      case Mode::kMs:
        conn.out += "ms ";
        fmt_.Append(conn.out, k);
        conn.out += ' ';
        conn.out += len;
        conn.out += " T0\r\n";
        conn.out += value_;
        conn.out += "\r\n";
        break;
      case Mode::kGet: {
        conn.out += "get ";
        size_t at = conn.out.size();
        fmt_.Append(conn.out, k);
        conn.batch_keys[i].assign(conn.out, at, std::string::npos);
        conn.out += "\r\n";
        break;
      }
      case Mode::kMg:
        conn.out += "mg ";
        fmt_.Append(conn.out, k);
        conn.out += " v\r\n";
        break;
    }
  }
  conn.sent = n;
  conn.answered = 0;
  conn.batch_start = Clock::now();
  Flush(conn);
  return true;
}

void Worker::Flush(Connection& conn) {
  while (conn.out_off < conn.out.size()) {
    ssize_t w = ::send(conn.fd, conn.out.data() + conn.out_off, conn.out.size() - conn.out_off,
                       MSG_NOSIGNAL);
    if (w > 0) {
      conn.out_off += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      SetWriteInterest(conn, true);
      return;
    }
    Error(conn, std::string("send: ") + std::strerror(errno), true);
    return;
  }
  SetWriteInterest(conn, false);
}

// Finds "\r\n" at or after p; returns the index of '\r' or npos.
size_t FindCrlf(const char* data, size_t begin, size_t end) {
  const char* p = data + begin;
  const char* e = data + end;
  while (p < e) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', e - p));
    if (nl == nullptr) return std::string::npos;
    if (nl > data + begin && nl[-1] == '\r') return static_cast<size_t>(nl - 1 - data);
    p = nl + 1;
  }
  return std::string::npos;
}

bool ParseU64(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t x = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    x = x * 10 + static_cast<uint64_t>(ch - '0');
  }
  *v = x;
  return true;
}

bool IsErrorLine(std::string_view line) {
  return line == "ERROR" || line.starts_with("CLIENT_ERROR ") || line.starts_with("SERVER_ERROR ");
}

// Parses one reply at conn.in[in_begin, in_end). *consumed: its length (for all but kNeedMore).
Parse Worker::ParseOne(Connection& conn, size_t* consumed) {
  const char* d = conn.in.data();
  size_t b = conn.in_begin, e = conn.in_end;
  size_t cr = FindCrlf(d, b, e);
  if (cr == std::string::npos) {
    // A status line is short; a long run without CRLF is garbage.
    return e - b > 8192 ? Parse::kBad : Parse::kNeedMore;
  }
  std::string_view line(d + b, cr - b);
  size_t line_len = cr + 2 - b;
  if (IsErrorLine(line)) {
    *consumed = line_len;
    why_ = "error reply";
    return Parse::kErrorReply;
  }
  why_ = "unexpected reply";
  // A value block after the line: `len` bytes and CRLF, then (get) END.
  auto block = [&](uint64_t len, size_t tail, Parse ok) -> Parse {
    size_t need = line_len + len + 2 + tail;
    if (e - b < need) return Parse::kNeedMore;
    const char* data = d + b + line_len;
    if (data[len] != '\r' || data[len + 1] != '\n') return Parse::kBad;
    if (tail != 0 && std::string_view(data + len + 2, tail) != "END\r\n") return Parse::kBad;
    *consumed = need;
    if (len != c_.value_bytes) {
      why_ = "wrong value length";
      return Parse::kErrorReply;
    }
    if (c_.preload && std::memcmp(data, value_.data(), len) != 0) {
      why_ = "wrong value bytes";
      return Parse::kErrorReply;
    }
    return ok;
  };
  switch (mode_) {
    case Mode::kSet:
      *consumed = line_len;
      return line == "STORED" ? Parse::kOk : Parse::kBad;
    case Mode::kMs:
      *consumed = line_len;
      if (line == "HD") return Parse::kOk;
      if (line == "NS" || line == "EX" || line == "NF") return Parse::kErrorReply;
      return Parse::kBad;
    case Mode::kMg: {
      *consumed = line_len;
      if (line == "EN") return Parse::kMiss;
      if (!line.starts_with("VA ")) return Parse::kBad;
      std::string_view rest = line.substr(3);
      uint64_t len = 0;
      if (!ParseU64(rest.substr(0, rest.find(' ')), &len) || len > (1u << 30)) return Parse::kBad;
      return block(len, 0, Parse::kOk);
    }
    case Mode::kGet: {
      *consumed = line_len;
      if (line == "END") return Parse::kMiss;
      // VALUE <key> <flags> <bytes>
      if (!line.starts_with("VALUE ")) return Parse::kBad;
      std::string_view rest = line.substr(6);
      size_t sp1 = rest.find(' ');
      if (sp1 == std::string_view::npos) return Parse::kBad;
      std::string_view key = rest.substr(0, sp1);
      rest = rest.substr(sp1 + 1);
      size_t sp2 = rest.find(' ');
      if (sp2 == std::string_view::npos) return Parse::kBad;
      uint64_t flags = 0, len = 0;
      if (!ParseU64(rest.substr(0, sp2), &flags)) return Parse::kBad;
      std::string_view len_tok = rest.substr(sp2 + 1);
      if (!ParseU64(len_tok.substr(0, len_tok.find(' ')), &len) || len > (1u << 30)) {
        return Parse::kBad;
      }
      Parse p = block(len, 5, Parse::kOk);
      if (p == Parse::kNeedMore || p == Parse::kBad) return p;
      if (key != conn.batch_keys[conn.answered]) {
        why_ = "reply for another key";
        return Parse::kErrorReply;
      }
      return p;
    }
  }
  return Parse::kBad;
}

void Worker::OnReadable(Connection& conn, std::atomic<int64_t>* budget,
                        Clock::time_point deadline) {
  if (conn.in.size() - conn.in_end < 4096) {
    if (conn.in_begin > 0) {
      std::memmove(conn.in.data(), conn.in.data() + conn.in_begin, conn.in_end - conn.in_begin);
      conn.in_end -= conn.in_begin;
      conn.in_begin = 0;
    }
    if (conn.in.size() - conn.in_end < 4096) conn.in.resize(conn.in.size() * 2);
  }
  ssize_t r = ::recv(conn.fd, conn.in.data() + conn.in_end, conn.in.size() - conn.in_end, 0);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (r <= 0) {
    Error(conn,
          r == 0 ? std::string("connection closed by the server")
                 : std::string("recv: ") + std::strerror(errno),
          true);
    return;
  }
  conn.in_end += static_cast<size_t>(r);
  while (conn.answered < conn.sent) {
    size_t consumed = 0;
    Parse p = ParseOne(conn, &consumed);
    if (p == Parse::kNeedMore) break;
    if (p == Parse::kBad || p == Parse::kErrorReply) {
      // Show the start of the reply, CR and LF as spaces.
      std::string shown(conn.in.data() + conn.in_begin,
                        std::min<size_t>(conn.in_end - conn.in_begin, 60));
      for (char& ch : shown) {
        if (ch == '\r' || ch == '\n') ch = ' ';
      }
      bool bad = p == Parse::kBad;
      Error(
          conn,
          std::string(bad ? "malformed reply" : why_) + " to " + c_.mode_name + ": '" + shown + "'",
          bad);
      if (bad) return;
    }
    if (p == Parse::kMiss) ++tally_.misses;
    conn.in_begin += consumed;
    ++conn.answered;
  }
  if (conn.in_begin == conn.in_end) conn.in_begin = conn.in_end = 0;
  if (conn.answered < conn.sent) return;
  if (conn.in_begin != conn.in_end) {
    Error(conn, "bytes after the last reply of a batch", true);
    return;
  }
  // The batch is complete.
  auto now = Clock::now();
  tally_.ops += static_cast<uint64_t>(conn.sent);
  tally_.batch_us.push_back(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now - conn.batch_start).count()));
  conn.sent = 0;
  if ((budget == nullptr && !keys_.sequential && now >= deadline) || !StartBatch(conn, budget)) {
    conn.dead = true;  // finished, not failed
    --live_;
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, conn.fd, nullptr);
  }
}

void Worker::Run(Clock::time_point deadline, std::atomic<int64_t>* budget) {
  for (Connection& conn : conns_) {
    if (!StartBatch(conn, budget)) {
      conn.dead = true;
      --live_;
      ::epoll_ctl(ep_, EPOLL_CTL_DEL, conn.fd, nullptr);
    }
  }
  std::vector<epoll_event> events(conns_.size() + 1);
  while (live_ > 0) {
    int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      ++tally_.errors;
      if (tally_.first_error.empty()) tally_.first_error = "epoll_wait failed";
      return;
    }
    // A timed run that stalls (a server that stopped answering) must still end.
    if (budget == nullptr && !keys_.sequential &&
        Clock::now() > deadline + std::chrono::seconds(10)) {
      for (Connection& conn : conns_) {
        if (!conn.dead) Error(conn, "no reply within 10 s after the end of the run", true);
      }
      return;
    }
    for (int i = 0; i < n; ++i) {
      Connection& conn = conns_[events[i].data.u64];
      if (conn.dead) continue;
      if ((events[i].events & EPOLLOUT) != 0) Flush(conn);
      if (!conn.dead && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
        OnReadable(conn, budget, deadline);
      }
    }
  }
}

struct RunResult {
  Tally tally;
  double seconds = 0;
};

// Runs `mode` on fresh connections: timed / budgeted random keys, or each key once (sequential).
bool RunPhase(const Config& c, Mode mode, bool sequential, RunResult* out, std::string* err) {
  std::atomic<uint64_t> next{0};
  KeySource keys{sequential, &next, c.keys};
  std::atomic<int64_t> budget{static_cast<int64_t>(c.requests)};
  std::atomic<int64_t>* budget_ptr = (!sequential && c.requests > 0) ? &budget : nullptr;
  int threads = std::max(1, std::min(c.threads, c.connections));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    int n = c.connections / threads + (t < c.connections % threads ? 1 : 0);
    workers.push_back(
        std::make_unique<Worker>(c, mode, keys, n, c.seed * 7919 + t + (sequential ? 17 : 0)));
  }
  for (auto& w : workers) {
    if (!w->Connect(err)) return false;
  }
  auto start = Clock::now();
  auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.seconds));
  std::vector<std::thread> pool;
  for (auto& w : workers) {
    Worker* wp = w.get();
    pool.emplace_back([wp, deadline, budget_ptr] { wp->Run(deadline, budget_ptr); });
  }
  for (auto& t : pool) t.join();
  out->seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& w : workers) out->tally.Merge(w->tally());
  return true;
}

uint32_t Percentile(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{
      "mc-load: memcached load client. N connections, each sending pipelined batches of P\n"
      "requests and checking every reply; prints ops/s and per-batch p50/p99 latency."};
  app.add_option("--host", c.host, "Server address")->capture_default_str();
  app.add_option("-p,--port", c.port, "Server port")->capture_default_str();
  app.add_option("-m,--mode", c.mode_name, "set, get, ms (meta set) or mg (meta get)")
      ->check(CLI::IsMember({"set", "get", "ms", "mg"}))
      ->capture_default_str();
  app.add_option("-c,--connections", c.connections, "Connections")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("-P,--pipeline", c.pipeline, "Requests per batch (pipeline depth)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("-t,--threads", c.threads, "Client threads (event loops)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("-k,--keys", c.keys, "Key space: keys 0..K-1, chosen uniformly at random")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--key-bytes", c.key_bytes, "Key length (prefix + zero-padded number)")
      ->check(CLI::Range(1, 250))
      ->capture_default_str();
  app.add_option("--key-prefix", c.key_prefix, "Key prefix")->capture_default_str();
  app.add_option("-d,--value-bytes", c.value_bytes, "Value length")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("-s,--seconds", c.seconds, "Duration of the measured run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-n,--requests", c.requests, "Stop after this many requests instead (0: timed)")
      ->capture_default_str();
  app.add_flag("!--no-preload", c.preload, "get/mg: do not store every key first");
  app.add_option("--seed", c.seed, "Random seed")->capture_default_str();
  app.add_flag("--csv", c.csv, "Print one CSV header and row instead of the summary");
  CLI11_PARSE(app, argc, argv);
  c.mode = c.mode_name == "set"  ? Mode::kSet
           : c.mode_name == "ms" ? Mode::kMs
           : c.mode_name == "mg" ? Mode::kMg
                                 : Mode::kGet;
  bool reads = c.mode == Mode::kGet || c.mode == Mode::kMg;
  if (!reads) c.preload = false;  // only reads check values against what was preloaded

  std::string err;
  if (reads && c.preload) {
    RunResult pre;
    if (!RunPhase(c, c.mode == Mode::kGet ? Mode::kSet : Mode::kMs, /*sequential=*/true, &pre,
                  &err)) {
      std::fprintf(stderr, "mc-load: preload: %s\n", err.c_str());
      return 1;
    }
    if (pre.tally.errors != 0 || pre.tally.ops != c.keys) {
      std::fprintf(
          stderr, "mc-load: preload stored %llu of %llu keys, %llu errors (first: %s)\n",
          static_cast<unsigned long long>(pre.tally.ops), static_cast<unsigned long long>(c.keys),
          static_cast<unsigned long long>(pre.tally.errors), pre.tally.first_error.c_str());
      return 1;
    }
    if (!c.csv) {
      std::fprintf(stderr, "mc-load: preloaded %llu keys in %.2f s\n",
                   static_cast<unsigned long long>(c.keys), pre.seconds);
    }
  }
  RunResult r;
  if (!RunPhase(c, c.mode, /*sequential=*/false, &r, &err)) {
    std::fprintf(stderr, "mc-load: %s\n", err.c_str());
    return 1;
  }
  Tally& t = r.tally;
  double ops_s = r.seconds > 0 ? static_cast<double>(t.ops) / r.seconds : 0;
  uint32_t p50 = Percentile(t.batch_us, 0.50);
  uint32_t p99 = Percentile(t.batch_us, 0.99);
  if (c.csv) {
    std::printf("mode,ops_per_sec,requests,seconds,p50_us,p99_us,errors,misses\n");
    std::printf("%s,%.0f,%llu,%.3f,%u,%u,%llu,%llu\n", c.mode_name.c_str(), ops_s,
                static_cast<unsigned long long>(t.ops), r.seconds, p50, p99,
                static_cast<unsigned long long>(t.errors),
                static_cast<unsigned long long>(t.misses));
  } else {
    std::printf(
        "%s %s:%u  connections %d  pipeline %d  threads %d  keys %llu  value %zu B\n"
        "  %llu requests in %.2f s: %.0f ops/s; batch latency p50 %u us, p99 %u us\n"
        "  errors %llu, misses %llu, connections lost %llu\n",
        c.mode_name.c_str(), c.host.c_str(), c.port, c.connections, c.pipeline, c.threads,
        static_cast<unsigned long long>(c.keys), c.value_bytes,
        static_cast<unsigned long long>(t.ops), r.seconds, ops_s, p50, p99,
        static_cast<unsigned long long>(t.errors), static_cast<unsigned long long>(t.misses),
        static_cast<unsigned long long>(t.dead_connections));
  }
  if (t.errors != 0) {
    std::fprintf(stderr, "mc-load: %llu errors; first: %s\n",
                 static_cast<unsigned long long>(t.errors), t.first_error.c_str());
    return 1;
  }
  if (c.preload && t.misses != 0) {
    std::fprintf(stderr, "mc-load: warning: %llu misses after preloading every key\n",
                 static_cast<unsigned long long>(t.misses));
  }
  return 0;
}

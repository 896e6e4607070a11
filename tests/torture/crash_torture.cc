// varve-crash-torture: proves that acknowledged writes survive kill -9.
//
// The parent process runs cycles on one store directory. Each cycle it forks a writer child that
// opens the store and runs random puts, deletes, TTL puts, atomic batches and Compact() calls from
// several threads on a bounded key space. A thread locks the keys of an operation, reports it over
// a pipe ("intent"), runs it, reports it again once it returned OK ("ack"), then unlocks; so the
// operations on one key are totally ordered and at most one of them is in flight at any time.
// The parent kills the child with SIGKILL after a random delay, reopens the store in-process and
// checks it against its model:
//   - every key holds its last acknowledged state, or the state an in-flight operation left;
//     a TTL value may be absent only once it can have expired, and keeps an expiry in the window
//     its write allows; a value without TTL has no expiry;
//   - an atomic batch that was in flight at the kill is visible at all its keys or at none;
//   - every value's bytes are exactly those written (a value is regenerated from its header:
//     key, op id, length, kind);
//   - versions: unchanged values keep theirs, new ones exceed every version their key had, no
//     two live keys share one;
//   - a full iteration returns exactly the keys Get finds, each once, with the same values;
//   - the store's segments stay below --max-store-mib (space is reclaimed; also a guard for the
//     machine: the run stops there).
// The observed state then becomes the model, and the next cycle goes on with the same store.
//
// Output: one line per failure, and a last line "N passed, M failed" (cycles). Exit 0 iff M == 0.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "varve/db.h"

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxBatchOps = 20;
constexpr uint32_t kMessageMagic = 0x54435656;  // "VVCT"
constexpr uint32_t kValueMagic = 0x4c415656;    // "VVAL"
constexpr size_t kValueHeaderBytes = 24;
constexpr uint32_t kLongTtlMs = 3'600'000;  // 1 hour: does not expire during a run
constexpr uint32_t kMaxShortTtlMs = 500;
constexpr unsigned kCheckTimeoutSeconds = 60;
constexpr int kMaxFailureLinesPerCycle = 25;

// ---------------------------------------------------------------------------------------------
// Operations, keys and values

enum class OpKind : uint8_t { kPut = 0, kPutLongTtl = 1, kPutShortTtl = 2, kDelete = 3 };
enum class MessageType : uint8_t { kReady = 1, kIntent = 2, kAck = 3, kError = 4 };
enum class GroupKind : uint8_t { kSingle = 1, kBatch = 2, kCompact = 3 };

bool HasTtl(OpKind kind) { return kind == OpKind::kPutLongTtl || kind == OpKind::kPutShortTtl; }

const char* KindName(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
      return "put";
    case OpKind::kPutLongTtl:
      return "put(ttl 1h)";
    case OpKind::kPutShortTtl:
      return "put(short ttl)";
    case OpKind::kDelete:
      return "delete";
  }
  return "?";
}

// One operation of a message. Fixed layout: the child and the parent are the same binary.
struct WireOp {
  uint64_t op_id;
  uint32_t key;
  uint32_t value_bytes;      // puts: the value's length
  uint64_t expiry_floor_ms;  // TTL puts: the child's clock before the write + ttl_ms
  uint32_t ttl_ms;           // TTL puts
  uint8_t kind;              // OpKind
  uint8_t pad[3];
};

// The child's report of one operation group (a single op, a batch, or a Compact()). At most
// PIPE_BUF bytes, so writes from the child's threads never interleave.
struct Message {
  uint32_t magic;
  uint8_t type;        // MessageType
  uint8_t group_kind;  // GroupKind
  uint8_t count;       // ops used
  uint8_t thread;
  uint64_t group_id;  // the first op's id (Compact: an op id of its own)
  union {
    WireOp ops[kMaxBatchOps];
    char text[kMaxBatchOps * sizeof(WireOp)];  // kError: NUL-terminated
  };
};
static_assert(sizeof(WireOp) == 32);
static_assert(sizeof(Message) <= PIPE_BUF, "a message must be written atomically");

uint64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t MixSeed(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t s = seed ^ (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full);
  return SplitMix64(&s);
}

// Key k: "k<k>", every fourth one with a suffix of 2..62 bytes, so key lengths vary.
std::string KeyName(uint32_t k) {
  std::string s = "k" + std::to_string(k);
  if (k % 4 == 0) s.append(":").append(k % 61 + 1, static_cast<char>('a' + k % 26));
  return s;
}

std::optional<uint32_t> ParseKeyName(std::string_view s, uint32_t num_keys) {
  if (s.size() < 2 || s[0] != 'k') return std::nullopt;
  uint64_t k = 0;
  size_t i = 1;
  for (; i < s.size() && i < 12 && s[i] >= '0' && s[i] <= '9'; ++i) k = k * 10 + (s[i] - '0');
  if (i == 1 || k >= num_keys || KeyName(static_cast<uint32_t>(k)) != s) return std::nullopt;
  return static_cast<uint32_t>(k);
}

// A value: [magic u32][key u32][op id u64][length u32][kind u8][3 zero bytes], then bytes drawn
// from a generator seeded with (key, op id). Host byte order: written and read by one binary.
struct ValueHeader {
  uint32_t key;
  uint64_t op_id;
  uint32_t length;
  OpKind kind;
};

std::string MakeValue(uint32_t key, uint64_t op_id, uint32_t length, OpKind kind) {
  std::string v(std::max<size_t>(length, kValueHeaderBytes), '\0');
  std::memcpy(v.data(), &kValueMagic, 4);
  std::memcpy(v.data() + 4, &key, 4);
  std::memcpy(v.data() + 8, &op_id, 8);
  std::memcpy(v.data() + 16, &length, 4);
  v[20] = static_cast<char>(kind);
  uint64_t state = op_id * 0xd6e8feb86659fd93ull ^ key;
  for (size_t i = kValueHeaderBytes; i < v.size(); i += 8) {
    uint64_t r = SplitMix64(&state);
    std::memcpy(v.data() + i, &r, std::min<size_t>(8, v.size() - i));
  }
  return v;
}

// Checks the value's bytes. On failure *why says what is wrong.
std::optional<ValueHeader> DecodeValue(std::string_view v, std::string* why) {
  ValueHeader h;
  uint32_t magic = 0;
  if (v.size() < kValueHeaderBytes) {
    *why = "value of " + std::to_string(v.size()) + " bytes is shorter than its header";
    return std::nullopt;
  }
  std::memcpy(&magic, v.data(), 4);
  std::memcpy(&h.key, v.data() + 4, 4);
  std::memcpy(&h.op_id, v.data() + 8, 8);
  std::memcpy(&h.length, v.data() + 16, 4);
  uint8_t kind = static_cast<uint8_t>(v[20]);
  if (magic != kValueMagic || kind > static_cast<uint8_t>(OpKind::kPutShortTtl)) {
    *why = "value header is garbage";
    return std::nullopt;
  }
  h.kind = static_cast<OpKind>(kind);
  if (h.length != v.size()) {
    *why = "value of op " + std::to_string(h.op_id) + " has " + std::to_string(v.size()) +
           " bytes, its header says " + std::to_string(h.length);
    return std::nullopt;
  }
  std::string expected = MakeValue(h.key, h.op_id, h.length, h.kind);
  if (expected != v) {
    size_t at = 0;
    while (at < v.size() && expected[at] == v[at]) ++at;
    *why = "value of op " + std::to_string(h.op_id) + " (" + std::to_string(h.length) +
           " bytes) differs from what was written at byte " + std::to_string(at);
    return std::nullopt;
  }
  return h;
}

struct Config {
  int cycles = 50;
  std::string dir;
  bool keep = false;
  int threads = 4;
  uint64_t seed = 0;
  std::string durability = "sync";
  std::string index = "hash";
  uint32_t min_delay_ms = 5;
  uint32_t max_delay_ms = 300;
  uint32_t keys = 2000;
  uint32_t compact_interval_ms = 40;
  bool background_compaction = true;
  uint32_t short_ttl_percent = 4;
  uint32_t max_store_mib = 1024;
  std::string inject;  // a deliberately broken writer, to see the checks catch it
  bool verbose = false;
};

varve::Options StoreOptions(const Config& cfg) {
  varve::Options o;
  o.durability = cfg.durability == "none"       ? varve::Durability::kNone
                 : cfg.durability == "interval" ? varve::Durability::kInterval
                 : cfg.durability == "batch"    ? varve::Durability::kBatch
                                                : varve::Durability::kSync;
  o.index = cfg.index == "ordered" ? varve::IndexKind::kOrdered : varve::IndexKind::kHash;
  o.segment_size_bytes = 1 << 20;  // the minimum: segments seal often
  o.compaction_check_interval_ms = 20;
  o.background_compaction = cfg.background_compaction;
  o.sync_interval_ms = 50;
  o.sync_batch_writes = 64;
  return o;
}

// ---------------------------------------------------------------------------------------------
// The writer child

class Writer {
 public:
  Writer(const Config& cfg, int cycle, int fd)
      : cfg_(cfg),
        cycle_(cycle),
        fd_(fd),
        key_mu_(new std::mutex[cfg.keys]),
        next_op_id_((static_cast<uint64_t>(cycle) + 1) << 32) {}

  [[noreturn]] void Run() {
    auto db = varve::DB::Open(StoreOptions(cfg_), cfg_.dir);
    if (!db.ok()) Fatal("open: " + db.status().ToString());
    db_ = std::move(db).value();
    Message m = NewMessage(MessageType::kReady, GroupKind::kSingle, 0, 0);
    Send(m);
    for (int t = 0; t < cfg_.threads; ++t) std::thread([this, t] { Loop(t); }).detach();
    while (true) pause();  // the parent kills us
  }

 private:
  static Message NewMessage(MessageType type, GroupKind kind, uint64_t group_id, int thread) {
    Message m;
    std::memset(&m, 0, sizeof(m));
    m.magic = kMessageMagic;
    m.type = static_cast<uint8_t>(type);
    m.group_kind = static_cast<uint8_t>(kind);
    m.group_id = group_id;
    m.thread = static_cast<uint8_t>(thread);
    return m;
  }

  void Send(const Message& m) {
    while (true) {
      ssize_t n = write(fd_, &m, sizeof(m));
      if (n == static_cast<ssize_t>(sizeof(m))) return;
      if (n < 0 && errno == EINTR) continue;
      _exit(5);  // the parent is gone
    }
  }

  [[noreturn]] void Fatal(const std::string& what) {
    Message m = NewMessage(MessageType::kError, GroupKind::kSingle, 0, 0);
    std::snprintf(m.text, sizeof(m.text), "%s", what.c_str());
    Send(m);
    _exit(3);
  }

  uint32_t PickKey(std::mt19937_64& rng) {
    // A hot set makes overwrites of one key by different threads common.
    if (rng() % 10 < 3) return static_cast<uint32_t>(rng() % std::min<uint32_t>(32, cfg_.keys));
    return static_cast<uint32_t>(rng() % cfg_.keys);
  }

  static uint32_t PickLength(std::mt19937_64& rng, bool allow_huge) {
    uint32_t r = rng() % 1000;
    if (allow_huge && r < 10) return 16384 + rng() % (128 * 1024);  // multi-page write(2)
    if (r < 700) return kValueHeaderBytes + rng() % 200;
    if (r < 900) return 200 + rng() % 824;
    return 1024 + rng() % 7168;  // several KB
  }

  WireOp RandomOp(std::mt19937_64& rng, bool in_batch) {
    WireOp op;
    std::memset(&op, 0, sizeof(op));
    op.key = PickKey(rng);
    uint32_t r = rng() % 100;
    OpKind kind = r < cfg_.short_ttl_percent ? OpKind::kPutShortTtl
                  : r < 59                   ? OpKind::kPut
                  : r < 67                   ? OpKind::kPutLongTtl
                                             : OpKind::kDelete;
    op.kind = static_cast<uint8_t>(kind);
    if (kind != OpKind::kDelete) op.value_bytes = PickLength(rng, !in_batch);
    if (kind == OpKind::kPutLongTtl) op.ttl_ms = kLongTtlMs;
    if (kind == OpKind::kPutShortTtl) op.ttl_ms = 1 + rng() % kMaxShortTtlMs;
    return op;
  }

  void Loop(int thread) {
    std::mt19937_64 rng(MixSeed(cfg_.seed, static_cast<uint64_t>(cycle_), thread + 1));
    std::vector<uint32_t> keys;
    std::vector<std::string> values;
    auto next_compact = SteadyClock::now() + std::chrono::milliseconds(rng() % 20);
    while (true) {
      // Only thread 0 compacts: at most one Compact() runs, while the others write.
      if (thread == 0 && cfg_.compact_interval_ms > 0 && SteadyClock::now() >= next_compact) {
        next_compact = SteadyClock::now() +
                       std::chrono::milliseconds(rng() % (2 * cfg_.compact_interval_ms + 1));
        Message m =
            NewMessage(MessageType::kIntent, GroupKind::kCompact, next_op_id_.fetch_add(1), thread);
        Send(m);
        varve::Status s = db_->Compact();
        if (!s.ok()) Fatal("Compact: " + s.ToString());
        m.type = static_cast<uint8_t>(MessageType::kAck);
        Send(m);
        continue;
      }
      bool batch = rng() % 100 < 35;
      size_t n = batch ? 2 + rng() % (kMaxBatchOps - 1) : 1;
      Message m = NewMessage(MessageType::kIntent, batch ? GroupKind::kBatch : GroupKind::kSingle,
                             0, thread);
      m.count = static_cast<uint8_t>(n);
      keys.clear();
      for (size_t i = 0; i < n; ++i) {
        m.ops[i] = RandomOp(rng, batch);
        keys.push_back(m.ops[i].key);
      }
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      for (uint32_t k : keys) key_mu_[k].lock();
      // Ids are taken under the key locks, so they grow along each key's history.
      uint64_t now_ms = NowUnixMs();
      for (size_t i = 0; i < n; ++i) {
        m.ops[i].op_id = next_op_id_.fetch_add(1);
        if (m.ops[i].ttl_ms != 0) m.ops[i].expiry_floor_ms = now_ms + m.ops[i].ttl_ms;
      }
      m.group_id = m.ops[0].op_id;
      values.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const WireOp& op = m.ops[i];
        if (static_cast<OpKind>(op.kind) != OpKind::kDelete) {
          values[i] = MakeValue(op.key, op.op_id, op.value_bytes, static_cast<OpKind>(op.kind));
        }
      }
      Send(m);
      if (cfg_.inject == "ack-early") {  // a broken writer: acknowledges before writing
        m.type = static_cast<uint8_t>(MessageType::kAck);
        Send(m);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      varve::Status s;
      if (batch) {
        // A broken writer splits the batch in two.
        size_t split = cfg_.inject == "split-batch" ? n / 2 : n;
        varve::WriteBatch wb;
        for (size_t i = 0; i < n && s.ok(); ++i) {
          const WireOp& op = m.ops[i];
          if (static_cast<OpKind>(op.kind) == OpKind::kDelete) {
            wb.Delete(KeyName(op.key));
          } else {
            wb.Put(KeyName(op.key), values[i], op.ttl_ms);
          }
          if (i + 1 == split && split < n) {
            s = db_->Write(wb);
            wb.Clear();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }
        if (s.ok()) s = db_->Write(wb);
      } else if (static_cast<OpKind>(m.ops[0].kind) == OpKind::kDelete) {
        s = db_->Delete(KeyName(m.ops[0].key));
      } else {
        s = db_->Put(KeyName(m.ops[0].key), values[0], {.ttl_ms = m.ops[0].ttl_ms});
      }
      if (!s.ok()) Fatal(std::string(batch ? "Write" : "Put/Delete") + ": " + s.ToString());
      m.type = static_cast<uint8_t>(MessageType::kAck);
      if (cfg_.inject != "ack-early") Send(m);
      for (auto it = keys.rbegin(); it != keys.rend(); ++it) key_mu_[*it].unlock();
    }
  }

  const Config& cfg_;
  const int cycle_;
  const int fd_;
  std::unique_ptr<std::mutex[]> key_mu_;
  std::atomic<uint64_t> next_op_id_;
  std::unique_ptr<varve::DB> db_;
};

// ---------------------------------------------------------------------------------------------
// The parent: model, kill, check

// One state of a key: absent, or the value written by op op_id.
struct KeyState {
  uint64_t op_id = 0;  // 0: absent
  OpKind kind = OpKind::kDelete;
  uint32_t value_bytes = 0;
  uint64_t version = 0;  // 0: not observed yet
  // TTL values: the expiry lies in [expiry_lo_ms, expiry_hi_ms] (equal once observed).
  uint64_t expiry_lo_ms = 0;
  uint64_t expiry_hi_ms = 0;

  bool present() const { return op_id != 0; }
};

struct Observed {
  bool known = true;  // false: Get failed
  bool present = false;
  ValueHeader header{};
  uint64_t version = 0;
  uint64_t expiry_ms = 0;
  std::string value;
  uint64_t before_ms = 0;  // wall clock just before and after the Get
  uint64_t after_ms = 0;
};

struct Group {
  GroupKind kind;
  int thread;
  std::vector<WireOp> ops;
};

// A key's state if an in-flight group was applied: its last op on the key.
struct Candidate {
  uint64_t group_id;
  KeyState state;
};

// Alarm handler state: the message is formatted before each arming (snprintf is not
// async-signal-safe).
volatile sig_atomic_t g_child_pid = 0;
char g_timeout_message[512];

void OnAlarm(int) {
  pid_t pid = g_child_pid;
  if (pid > 0) kill(pid, SIGKILL);
  ssize_t ignored = write(STDOUT_FILENO, g_timeout_message, std::strlen(g_timeout_message));
  (void)ignored;
  _exit(1);
}

std::string Describe(const KeyState& s) {
  if (!s.present()) return "absent";
  std::string d = KindName(s.kind) + std::string(" of op ") + std::to_string(s.op_id);
  if (HasTtl(s.kind)) {
    d += s.expiry_lo_ms == s.expiry_hi_ms ? " expiring at " + std::to_string(s.expiry_lo_ms)
                                          : " expiring in [" + std::to_string(s.expiry_lo_ms) +
                                                ", " + std::to_string(s.expiry_hi_ms) + "]";
  }
  return d;
}

std::string Describe(const Observed& o) {
  if (!o.present) return "absent";
  std::string d = std::string(KindName(o.header.kind)) + " of op " +
                  std::to_string(o.header.op_id) + " (" + std::to_string(o.value.size()) +
                  " bytes, version " + std::to_string(o.version);
  if (o.expiry_ms != 0) d += ", expiring at " + std::to_string(o.expiry_ms);
  return d + ")";
}

// Whether observation o can be the state s: an absent TTL value may have expired.
bool Consistent(const KeyState& s, const Observed& o) {
  if (!s.present()) return !o.present;
  if (!o.present) return HasTtl(s.kind) && s.expiry_lo_ms <= o.after_ms;
  if (o.header.op_id != s.op_id) return false;
  if (HasTtl(s.kind)) return o.expiry_ms >= s.expiry_lo_ms && o.expiry_ms <= s.expiry_hi_ms;
  return true;
}

// What happened to a key, kept for the last few events to explain a failure.
enum class EventType : uint8_t { kAcked, kInFlight, kSeen };

struct Event {
  int cycle;
  EventType type;  // kInFlight: when the writer was killed; kSeen: by the check
  OpKind kind;
  bool batch;
  uint64_t op_id;  // 0: seen absent
  uint64_t version;
  uint64_t expiry_ms;
};

constexpr size_t kHistoryEvents = 8;

std::string DescribeHistory(const std::vector<Event>& events) {
  std::string s;
  for (const Event& e : events) {
    s += s.empty() ? "" : "; ";
    s += "c" + std::to_string(e.cycle) + " ";
    if (e.type == EventType::kSeen) {
      s += e.op_id == 0 ? "seen absent"
                        : "seen op " + std::to_string(e.op_id) + " v" + std::to_string(e.version);
      if (e.expiry_ms != 0) s += " exp " + std::to_string(e.expiry_ms);
      continue;
    }
    s += std::string(e.type == EventType::kAcked ? "acked " : "in flight ") +
         (e.batch ? "batch " : "") + KindName(e.kind) + " op " + std::to_string(e.op_id);
  }
  return s;
}

struct Totals {
  uint64_t acked_ops = 0;
  uint64_t acked_batches = 0;
  uint64_t acked_compactions = 0;
  uint64_t in_flight_singles = 0;
  uint64_t in_flight_batches = 0;
  uint64_t batches_applied = 0;
  uint64_t batches_not_applied = 0;
  uint64_t batches_undetermined = 0;
  uint64_t singles_applied = 0;
  uint64_t singles_not_applied = 0;
  uint64_t compactions_in_flight = 0;
  uint64_t kills_during_open = 0;
  uint64_t replayed_opens = 0;  // checks whose open loaded INDEX and replayed the writes after it
  uint64_t live_keys_last = 0;
};

class Torture {
 public:
  explicit Torture(Config cfg)
      : cfg_(std::move(cfg)),
        history_(cfg_.keys),
        model_(cfg_.keys),
        max_version_(cfg_.keys),
        last_op_(cfg_.keys) {}

  // Runs the cycles and prints the summary (not the final line). Returns {passed, failed}.
  std::pair<int, int> Run() {
    std::mt19937_64 rng(cfg_.seed);
    int passed = 0, failed = 0;
    auto start = SteadyClock::now();
    for (int cycle = 0; cycle < cfg_.cycles; ++cycle) {
      std::snprintf(g_timeout_message, sizeof(g_timeout_message),
                    "FAIL cycle %d: no progress for %u s (reopen or check hung; seed %" PRIu64
                    ", store kept in %s)\n%d passed, %d failed\n",
                    cycle, kCheckTimeoutSeconds, cfg_.seed, cfg_.dir.c_str(), passed, failed + 1);
      uint32_t delay_ms =
          cfg_.min_delay_ms +
          static_cast<uint32_t>(rng() % (cfg_.max_delay_ms - cfg_.min_delay_ms + 1));
      bool fatal = false;
      bool ok = RunCycle(cycle, delay_ms, &fatal);
      ok ? ++passed : ++failed;
      if (fatal) break;
    }
    double secs = std::chrono::duration<double>(SteadyClock::now() - start).count();
    std::printf("%.1f s; ops acknowledged %" PRIu64 " (%" PRIu64 " batches, %" PRIu64
                " compactions); in flight at the kill: %" PRIu64 " single ops (%" PRIu64
                " applied, %" PRIu64 " not), %" PRIu64 " batches (%" PRIu64 " applied, %" PRIu64
                " not, %" PRIu64 " undetermined), %" PRIu64 " compactions; %" PRIu64
                " kills during open; %" PRIu64 " checks opened through INDEX + replay; %" PRIu64
                " live keys at the end\n",
                secs, totals_.acked_ops, totals_.acked_batches, totals_.acked_compactions,
                totals_.in_flight_singles, totals_.singles_applied, totals_.singles_not_applied,
                totals_.in_flight_batches, totals_.batches_applied, totals_.batches_not_applied,
                totals_.batches_undetermined, totals_.compactions_in_flight,
                totals_.kills_during_open, totals_.replayed_opens, totals_.live_keys_last);
    if (failed > 0) {
      std::printf("replay with: --seed %" PRIu64
                  " --durability %s --threads %d --keys %u --index %s\n",
                  cfg_.seed, cfg_.durability.c_str(), cfg_.threads, cfg_.keys, cfg_.index.c_str());
    }
    return {passed, failed};
  }

 private:
  void Fail(const std::string& line) {
    if (++failure_lines_ <= kMaxFailureLinesPerCycle) {
      std::printf("FAIL cycle %d: %s\n", cycle_, line.c_str());
    } else if (failure_lines_ == kMaxFailureLinesPerCycle + 1) {
      std::printf("FAIL cycle %d: (more failures in this cycle not shown)\n", cycle_);
    }
  }

  // One cycle: writer child, kill, check. Returns whether it passed; *fatal stops the run.
  bool RunCycle(int cycle, uint32_t delay_ms, bool* fatal) {
    cycle_ = cycle;
    failure_lines_ = 0;
    in_flight_.clear();
    ready_ = false;
    child_error_.clear();
    buf_.clear();
    cycle_acked_ = 0;
    auto start = SteadyClock::now();

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      Fail(std::string("pipe: ") + std::strerror(errno));
      *fatal = true;
      return false;
    }
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
      Fail(std::string("fork: ") + std::strerror(errno));
      *fatal = true;
      return false;
    }
    if (pid == 0) {
      close(fds[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the parent
      if (getppid() == 1) _exit(4);
      Writer(cfg_, cycle, fds[1]).Run();
    }
    close(fds[1]);
    g_child_pid = pid;
    alarm(kCheckTimeoutSeconds + cfg_.max_delay_ms / 1000 + 1);

    // Read reports until the kill moment, then kill, reap and drain.
    auto deadline = start + std::chrono::milliseconds(delay_ms);
    bool eof = false;
    while (!eof) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) break;
      pollfd p{fds[0], POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno != EINTR) break;
      if (r > 0) eof = !ReadReports(fds[0]);
    }
    kill(pid, SIGKILL);
    uint64_t kill_ms = NowUnixMs();
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    g_child_pid = 0;
    while (ReadReports(fds[0])) {
    }
    close(fds[0]);
    if (!buf_.empty())
      Fail("the pipe ends inside a message (" + std::to_string(buf_.size()) + " bytes)");
    if (!(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)) {
      std::string how =
          WIFEXITED(wstatus)     ? "exited with status " + std::to_string(WEXITSTATUS(wstatus))
          : WIFSIGNALED(wstatus) ? "died of signal " + std::to_string(WTERMSIG(wstatus))
                                 : "stopped";
      Fail("writer " + how + " before the kill" +
           (child_error_.empty() ? std::string() : ": " + child_error_));
    }
    if (!ready_) ++totals_.kills_during_open;

    Check(kill_ms, fatal);
    alarm(0);
    // A guard for the machine as much as a check: space must be reclaimed.
    if (!*fatal && store_stats_.disk_bytes > uint64_t{cfg_.max_store_mib} << 20) {
      Fail("the store grew to " + std::to_string(store_stats_.disk_bytes >> 20) + " MiB in " +
           std::to_string(store_stats_.segments) + " segments with " +
           std::to_string(store_stats_.live_bytes >> 10) + " KiB live (limit --max-store-mib " +
           std::to_string(cfg_.max_store_mib) + "): space is not reclaimed; stopping");
      *fatal = true;
    }
    double secs = std::chrono::duration<double>(SteadyClock::now() - start).count();
    if (cfg_.verbose) {
      std::printf("cycle %d: kill after %u ms%s, %" PRIu64
                  " ops acknowledged, %zu groups in "
                  "flight, %" PRIu64 " live keys; store: %" PRIu64
                  " segments, %.1f MiB (%.1f MiB "
                  "live), reopen %.3f s; cycle %.3f s\n",
                  cycle, delay_ms, ready_ ? "" : " (during open)", cycle_acked_, in_flight_.size(),
                  totals_.live_keys_last, store_stats_.segments,
                  static_cast<double>(store_stats_.disk_bytes) / (1 << 20),
                  static_cast<double>(store_stats_.live_bytes) / (1 << 20), open_secs_, secs);
    }
    return failure_lines_ == 0;
  }

  // Reads what the pipe holds and handles every whole message. False at end of file.
  bool ReadReports(int fd) {
    char chunk[64 * 1024];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    size_t pos = 0;
    while (buf_.size() - pos >= sizeof(Message)) {
      Message m;
      std::memcpy(&m, buf_.data() + pos, sizeof(m));
      pos += sizeof(m);
      Handle(m);
    }
    buf_.erase(0, pos);
    return true;
  }

  void Handle(const Message& m) {
    if (m.magic != kMessageMagic) {
      Fail("garbage on the pipe");
      return;
    }
    switch (static_cast<MessageType>(m.type)) {
      case MessageType::kReady:
        ready_ = true;
        return;
      case MessageType::kError:
        child_error_.assign(m.text, strnlen(m.text, sizeof(m.text)));
        return;
      case MessageType::kIntent: {
        Group g{static_cast<GroupKind>(m.group_kind), m.thread, {}};
        if (m.count > kMaxBatchOps) {
          Fail("intent with " + std::to_string(m.count) + " ops");
          return;
        }
        for (size_t i = 0; i < m.count; ++i) {
          if (m.ops[i].key >= cfg_.keys) {
            Fail("intent for key " + std::to_string(m.ops[i].key) + " outside the key space");
            return;
          }
          g.ops.push_back(m.ops[i]);
        }
        if (!in_flight_.emplace(m.group_id, std::move(g)).second) {
          Fail("two intents for group " + std::to_string(m.group_id));
        }
        return;
      }
      case MessageType::kAck: {
        auto it = in_flight_.find(m.group_id);
        if (it == in_flight_.end()) {
          Fail("ack without intent for group " + std::to_string(m.group_id));
          return;
        }
        uint64_t now = NowUnixMs();
        for (const WireOp& op : it->second.ops) {
          model_[op.key] = StateAfter(op, now);
          last_op_[op.key] = std::max(last_op_[op.key], op.op_id);
          Record(op.key, Event{cycle_, EventType::kAcked, static_cast<OpKind>(op.kind),
                               it->second.kind == GroupKind::kBatch, op.op_id, 0, 0});
        }
        cycle_acked_ += it->second.ops.size();
        totals_.acked_ops += it->second.ops.size();
        if (it->second.kind == GroupKind::kBatch) ++totals_.acked_batches;
        if (it->second.kind == GroupKind::kCompact) ++totals_.acked_compactions;
        in_flight_.erase(it);
        return;
      }
    }
    Fail("message of unknown type " + std::to_string(m.type));
  }

  // The state op leaves its key in, if it was applied before latest_ms (wall clock).
  static KeyState StateAfter(const WireOp& op, uint64_t latest_ms) {
    KeyState s;
    s.kind = static_cast<OpKind>(op.kind);
    if (s.kind == OpKind::kDelete) return s;
    s.op_id = op.op_id;
    s.value_bytes = op.value_bytes;
    if (HasTtl(s.kind)) {
      s.expiry_lo_ms = op.expiry_floor_ms;
      s.expiry_hi_ms = latest_ms + op.ttl_ms;
    }
    return s;
  }

  // Reads one key with Get and checks the value's own integrity.
  Observed Observe(varve::DB* db, uint32_t k) {
    Observed o;
    std::string key = KeyName(k);
    o.before_ms = NowUnixMs();
    auto r = db->GetVersioned(key);
    o.after_ms = NowUnixMs();
    if (!r.ok()) {
      if (!r.status().IsNotFound()) {
        Fail("key " + key + ": Get: " + r.status().ToString());
        o.known = false;
      }
      return o;
    }
    o.present = true;
    o.value = std::move(r->value);
    o.version = r->version;
    o.expiry_ms = r->expiry_ms;
    std::string why;
    std::optional<ValueHeader> h = DecodeValue(o.value, &why);
    if (!h) {
      Fail("key " + key + ": corrupt value: " + why);
      o.known = false;
      return o;
    }
    o.header = *h;
    if (h->key != k) {
      Fail("key " + key + " holds the value op " + std::to_string(h->op_id) + " wrote to key " +
           KeyName(h->key));
      o.known = false;
    }
    if (HasTtl(h->kind) != (o.expiry_ms != 0)) {
      Fail("key " + key + ": " + Describe(o) + ": a " + KindName(h->kind) + " value " +
           (o.expiry_ms != 0 ? "has an expiry" : "lost its expiry"));
    }
    if (o.expiry_ms != 0 && o.expiry_ms <= o.before_ms) {
      Fail("key " + key + ": Get returned a value that expired at " + std::to_string(o.expiry_ms) +
           " (now " + std::to_string(o.before_ms) + ")");
    }
    return o;
  }

  void Check(uint64_t kill_ms, bool* fatal) {
    auto open_start = SteadyClock::now();
    auto db_or = varve::DB::Open(StoreOptions(cfg_), cfg_.dir);
    open_secs_ = std::chrono::duration<double>(SteadyClock::now() - open_start).count();
    if (!db_or.ok()) {
      Fail("reopen: " + db_or.status().ToString());
      *fatal = true;
      return;
    }
    std::unique_ptr<varve::DB> db = std::move(db_or).value();
    const varve::Stats opened = db->GetStats();
    if (opened.index_from_checkpoint != 0 && opened.index_replayed_segments != 0) {
      ++totals_.replayed_opens;
    }

    // The state each in-flight group would leave its keys in: its last op on each key.
    std::vector<std::vector<Candidate>> cands(cfg_.keys);
    std::vector<std::pair<uint64_t, const Group*>> groups;
    for (const auto& [id, g] : in_flight_) {
      groups.emplace_back(id, &g);
      if (g.kind == GroupKind::kCompact) {
        ++totals_.compactions_in_flight;
        continue;
      }
      std::map<uint32_t, WireOp> last;
      for (const WireOp& op : g.ops) last[op.key] = op;
      for (const auto& [k, op] : last) {
        cands[k].push_back(Candidate{id, StateAfter(op, kill_ms)});
        Record(k, Event{cycle_, EventType::kInFlight, static_cast<OpKind>(op.kind),
                        g.kind == GroupKind::kBatch, op.op_id, 0, 0});
      }
    }
    std::sort(groups.begin(), groups.end());

    // Every key against its accepted state and its in-flight candidates.
    std::vector<Observed> obs(cfg_.keys);
    std::unordered_map<uint64_t, uint32_t> versions;  // live version -> key
    for (uint32_t k = 0; k < cfg_.keys; ++k) {
      Observed& o = obs[k] = Observe(db.get(), k);
      if (!o.known) continue;
      const KeyState& a = model_[k];
      bool ok = Consistent(a, o);
      for (const Candidate& c : cands[k]) ok |= Consistent(c.state, o);
      if (!ok) {
        std::string line = "key " + KeyName(k) + ": found " + Describe(o) + ", expected " +
                           Describe(a) + " (last acknowledged)";
        for (const Candidate& c : cands[k]) {
          line +=
              " or " + Describe(c.state) + " (in flight, group " + std::to_string(c.group_id) + ")";
        }
        line += "; history: " + DescribeHistory(history_[k]);
        if (o.present && o.header.op_id < last_op_[k]) {
          line += "; an older value came back";
        } else if (o.present && a.present() && o.header.op_id == a.op_id) {
          line += "; the expiry changed";
        } else if (o.present) {
          line += "; a value that was neither acknowledged last nor in flight";
        } else {
          line += "; an acknowledged value is lost";
        }
        Fail(line);
      }
      if (!o.present) continue;
      // Versions: an unchanged value keeps its version; a new one exceeds all its key had.
      if (a.present() && o.header.op_id == a.op_id && a.version != 0 && o.version != a.version) {
        Fail("key " + KeyName(k) + ": version of unchanged op " + std::to_string(a.op_id) +
             " went from " + std::to_string(a.version) + " to " + std::to_string(o.version));
      }
      if (o.header.op_id != a.op_id && o.version <= max_version_[k]) {
        Fail("key " + KeyName(k) + ": new " + Describe(o) + " has a version not above " +
             std::to_string(max_version_[k]) + ", which the key had before");
      }
      auto [it, inserted] = versions.emplace(o.version, k);
      if (!inserted) {
        Fail("keys " + KeyName(it->second) + " and " + KeyName(k) + " both have version " +
             std::to_string(o.version));
      }
    }

    // In-flight groups: a batch is visible at all its keys or at none.
    for (const auto& [id, g] : groups) {
      if (g->kind == GroupKind::kCompact) continue;
      std::vector<uint32_t> applied_at, missing_at;
      for (size_t i = 0; i < g->ops.size(); ++i) {
        uint32_t k = g->ops[i].key;
        if (std::find(applied_at.begin(), applied_at.end(), k) != applied_at.end() ||
            std::find(missing_at.begin(), missing_at.end(), k) != missing_at.end() ||
            !obs[k].known) {
          continue;
        }
        const Candidate* mine = nullptr;
        bool others_match = false;
        for (const Candidate& c : cands[k]) {
          if (c.group_id == id) {
            mine = &c;
          } else {
            others_match |= Consistent(c.state, obs[k]);
          }
        }
        bool mine_matches = Consistent(mine->state, obs[k]);
        // Visible: only this group can have left the key so. Not visible: the key shows
        // another state, and no other in-flight group could have overwritten this one's.
        if (mine_matches && !Consistent(model_[k], obs[k]) && !others_match) {
          applied_at.push_back(k);
        } else if (!mine_matches && cands[k].size() == 1) {
          missing_at.push_back(k);
        }
      }
      bool is_batch = g->kind == GroupKind::kBatch;
      if (is_batch) ++totals_.in_flight_batches;
      if (!is_batch) ++totals_.in_flight_singles;
      if (!applied_at.empty() && !missing_at.empty()) {
        auto names = [](const std::vector<uint32_t>& keys) {
          std::string s;
          for (uint32_t k : keys) s += (s.empty() ? "" : ",") + KeyName(k);
          return s;
        };
        std::string ops;
        for (const WireOp& op : g->ops) {
          ops += (ops.empty() ? "" : ", ") + std::string(KindName(static_cast<OpKind>(op.kind))) +
                 " " + KeyName(op.key) + " op " + std::to_string(op.op_id);
        }
        Fail("batch " + std::to_string(id) + " (in flight) is partly applied: visible at " +
             names(applied_at) + ", not at " + names(missing_at) + "; ops: " + ops);
      } else if (!applied_at.empty()) {
        ++(is_batch ? totals_.batches_applied : totals_.singles_applied);
      } else if (!missing_at.empty()) {
        ++(is_batch ? totals_.batches_not_applied : totals_.singles_not_applied);
      } else if (is_batch) {
        ++totals_.batches_undetermined;
      }
    }

    CheckIteration(db.get(), obs);

    store_stats_ = db->GetStats();
    varve::Status s = db->Close();
    if (!s.ok()) Fail("close after the check: " + s.ToString());
    db.reset();

    // The observed state is the new model.
    uint64_t live = 0;
    for (uint32_t k = 0; k < cfg_.keys; ++k) {
      const Observed& o = obs[k];
      if (!o.known) continue;
      KeyState st;
      if (o.present) {
        ++live;
        st.op_id = o.header.op_id;
        st.kind = o.header.kind;
        st.value_bytes = o.header.length;
        st.version = o.version;
        st.expiry_lo_ms = st.expiry_hi_ms = o.expiry_ms;
        max_version_[k] = std::max(max_version_[k], o.version);
        last_op_[k] = std::max(last_op_[k], o.header.op_id);
      }
      model_[k] = st;
      Record(k, Event{cycle_, EventType::kSeen, st.kind, false, st.op_id, st.version,
                      st.expiry_lo_ms});
    }
    totals_.live_keys_last = live;
  }

  // A full iteration returns exactly the keys Get found, each once, with the same values.
  void CheckIteration(varve::DB* db, const std::vector<Observed>& obs) {
    std::vector<bool> seen(cfg_.keys, false);
    std::string prev;
    bool ordered = cfg_.index == "ordered";
    std::unique_ptr<varve::Iterator> it = db->NewIterator();
    for (; it->Valid(); it->Next()) {
      std::string_view key = it->key();
      std::optional<uint32_t> k = ParseKeyName(key, cfg_.keys);
      if (!k) {
        Fail("iteration returned key '" + std::string(key.substr(0, 80)) + "', never written");
        continue;
      }
      if (ordered && !prev.empty() && !(prev < key)) {
        Fail("ordered iteration returned " + std::string(key) + " after " + prev);
      }
      prev.assign(key);
      if (seen[*k]) {
        Fail("iteration returned key " + std::string(key) + " twice");
        continue;
      }
      seen[*k] = true;
      const Observed& o = obs[*k];
      if (!o.known) continue;
      if (!o.present) {
        Fail("iteration returned key " + std::string(key) + ", which Get did not find");
      } else if (it->value() != o.value || it->version() != o.version ||
                 it->expiry_ms() != o.expiry_ms) {
        Fail("iteration returned key " + std::string(key) + " with version " +
             std::to_string(it->version()) + ", " + std::to_string(it->value().size()) +
             " bytes, expiry " + std::to_string(it->expiry_ms()) + "; Get found " + Describe(o) +
             (it->value() == o.value ? "" : " and different bytes"));
      }
    }
    if (!it->status().ok()) Fail("iteration: " + it->status().ToString());
    uint64_t end_ms = NowUnixMs();
    for (uint32_t k = 0; k < cfg_.keys; ++k) {
      const Observed& o = obs[k];
      if (!o.known || !o.present || seen[k] || !it->status().ok()) continue;
      if (o.expiry_ms != 0 && o.expiry_ms <= end_ms) continue;  // expired since the Get
      Fail("iteration missed key " + KeyName(k) + ", which Get found: " + Describe(o));
    }
  }

  void Record(uint32_t k, const Event& e) {
    std::vector<Event>& h = history_[k];
    if (h.size() == kHistoryEvents) h.erase(h.begin());
    h.push_back(e);
  }

  const Config cfg_;
  std::vector<std::vector<Event>> history_;  // the last events of every key
  std::vector<KeyState> model_;              // the last acknowledged state of every key
  std::vector<uint64_t> max_version_;        // the highest version each key was seen with
  std::vector<uint64_t> last_op_;            // the newest op id each key was acked or seen with
  std::unordered_map<uint64_t, Group> in_flight_;  // by group id
  Totals totals_;
  int cycle_ = 0;
  int failure_lines_ = 0;
  bool ready_ = false;
  std::string child_error_;
  std::string buf_;  // pipe bytes not yet handled
  uint64_t cycle_acked_ = 0;
  double open_secs_ = 0;      // the last reopen's duration
  varve::Stats store_stats_;  // at the last check
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Crash torture: kill -9 a writer process at random moments and check that every "
      "acknowledged write survived, batches stayed atomic and no value was invented or damaged"};
  app.option_defaults()->always_capture_default();
  Config cfg;
  uint64_t seed = 0;
  app.add_option("--cycles", cfg.cycles, "Kill/check cycles")->check(CLI::PositiveNumber);
  app.add_option("--dir", cfg.dir,
                 "Store directory (empty or missing; kept). Default: a fresh temporary directory, "
                 "removed at the end unless --keep or a check failed");
  app.add_flag("--keep", cfg.keep, "Keep the store directory");
  app.add_option("--threads", cfg.threads, "Writer threads in the child")->check(CLI::Range(1, 64));
  CLI::Option* seed_opt =
      app.add_option("--seed", seed, "Random seed (printed)")->default_str("random");
  app.add_option("--durability", cfg.durability, "Durability mode of the writer")
      ->check(CLI::IsMember({"none", "interval", "batch", "sync"}));
  app.add_option("--index", cfg.index, "Index kind")->check(CLI::IsMember({"hash", "ordered"}));
  app.add_option("--min-delay-ms", cfg.min_delay_ms, "Shortest time from fork to kill");
  app.add_option("--max-delay-ms", cfg.max_delay_ms, "Longest time from fork to kill");
  app.add_option("--keys", cfg.keys, "Size of the key space")->check(CLI::Range(1u, 1u << 24));
  app.add_option("--compact-interval-ms", cfg.compact_interval_ms,
                 "Writer thread 0 calls Compact() about this often (random 0..2x; 0: never)");
  app.add_flag("!--no-background-compaction", cfg.background_compaction,
               "No compaction by the store itself (with --compact-interval-ms 0: none at all, so "
               "every open after the first clean close goes through INDEX and replays)");
  app.add_option("--short-ttl-percent", cfg.short_ttl_percent,
                 "Share of puts (in %) with a short TTL (1..500 ms), which expires during the run")
      ->check(CLI::Range(0u, 50u));
  app.add_option("--inject", cfg.inject,
                 "Break the writer on purpose to see the checks fail: ack-early (acknowledge "
                 "before writing) or split-batch (write a batch as two)")
      ->check(CLI::IsMember({"ack-early", "split-batch"}));
  app.add_option("--max-store-mib", cfg.max_store_mib,
                 "Fail and stop once the store's segments exceed this size");
  app.add_flag("-v,--verbose", cfg.verbose, "One line per cycle");
  CLI11_PARSE(app, argc, argv);
  if (cfg.max_delay_ms < cfg.min_delay_ms) cfg.max_delay_ms = cfg.min_delay_ms;
  std::random_device rd;
  cfg.seed = seed_opt->count() > 0 ? seed : (uint64_t{rd()} << 32 | rd());
  setvbuf(stdout, nullptr, _IOLBF, 0);

  bool own_dir = cfg.dir.empty();
  std::error_code ec;
  if (own_dir) {
    std::string tmpl =
        (std::filesystem::temp_directory_path(ec) / "varve-crash-torture-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "varve-crash-torture: mkdtemp %s: %s\n", tmpl.c_str(),
                   std::strerror(errno));
      return 2;
    }
    cfg.dir = tmpl;
  } else if (std::filesystem::exists(cfg.dir) && !std::filesystem::is_empty(cfg.dir)) {
    std::fprintf(stderr, "varve-crash-torture: %s is not empty\n", cfg.dir.c_str());
    return 2;
  }

  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnAlarm;
  sigaction(SIGALRM, &sa, nullptr);

  std::printf("varve-crash-torture: seed %" PRIu64
              ", %d cycles, durability %s, index %s, %d "
              "threads, %u keys, kill after %u..%u ms, store %s\n",
              cfg.seed, cfg.cycles, cfg.durability.c_str(), cfg.index.c_str(), cfg.threads,
              cfg.keys, cfg.min_delay_ms, cfg.max_delay_ms, cfg.dir.c_str());
  auto [passed, failed] = Torture(cfg).Run();
  if (failed == 0 && own_dir && !cfg.keep) {
    std::filesystem::remove_all(cfg.dir, ec);
  } else {
    std::printf("store kept in %s\n", cfg.dir.c_str());
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

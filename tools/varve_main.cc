// varve: the command-line tool for a Varve store.
//
// Exit status follows grep and diff: 0 success; 1 a definite "no" (get: the key is missing;
// check: damage found); 2 trouble (bad usage, I/O error, corruption, a store busy elsewhere),
// reported on stderr as "varve: <status>".
#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/check.h"
#include "engine/record_format.h"
#include "engine/repair.h"
#include "table_commands.h"
#include "varve/db.h"
#include "varve/env.h"
#include "varve/options.h"
#include "varve/status.h"
#include "varve/write_batch.h"

namespace varve {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitNo = 1;
constexpr int kExitTrouble = 2;

// A write batch is committed once it holds this many records or bytes: large enough to
// amortize the per-write cost, small enough to keep segments near their configured size.
constexpr size_t kLoadBatchRecords = 1000;
constexpr size_t kLoadBatchBytes = 1 << 20;

// Longest TTL accepted, in seconds (about 3000 years); keeps the expiry time far from overflow.
constexpr double kMaxTtlSeconds = 1e11;

struct GlobalFlags {
  std::string data_dir;
  IndexKind index = IndexKind::kHash;
  Durability durability = Durability::kNone;
  uint64_t segment_size_mb = 256;
};

int Trouble(const Status& s) {
  std::fprintf(stderr, "varve: %s\n", s.ToString().c_str());
  return kExitTrouble;
}

std::string Plural(uint64_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// Quotes a key for a message: control bytes are escaped so that they cannot garble a terminal.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

// Writes to stdout. A reader that went away (`varve scan | head`) is not an error: it has all it
// wanted. SIGPIPE is ignored so that the store is still closed cleanly.
class Output {
 public:
  bool Write(std::string_view data) {
    if (failed_) return false;
    if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) Fail();
    return !failed_;
  }
  // Flushes; returns an error unless everything reached stdout or the reader went away.
  Status Finish() {
    if (!failed_ && std::fflush(stdout) != 0) Fail();
    if (failed_ && errno_ != EPIPE) {
      return Status::IOError(std::string("writing to stdout: ") + std::strerror(errno_));
    }
    return Status::Ok();
  }

 private:
  void Fail() {
    failed_ = true;
    errno_ = errno;
  }
  bool failed_ = false;
  int errno_ = 0;
};

Result<std::unique_ptr<DB>> OpenStore(const GlobalFlags& g, bool create) {
  // Reading commands must not create a store at a mistyped path.
  if (!create && !Env::Default()->FileExists(g.data_dir)) {
    return Status::NotFound(g.data_dir + ": no such store");
  }
  Options options;
  options.create_if_missing = create;
  options.index = g.index;
  options.durability = g.durability;
  options.segment_size_bytes = g.segment_size_mb << 20;
  return DB::Open(options, g.data_dir);
}

// Closes the store (which syncs it) and turns the first error into the exit status.
int CloseStore(DB* db, const Status& s) {
  Status closed = db->Close();
  if (!s.ok()) return Trouble(s);
  if (!closed.ok()) return Trouble(closed);
  return kExitOk;
}

// The same status with more context appended to its message.
Status Annotate(const Status& s, const std::string& more) {
  std::string msg = s.message() + more;
  switch (s.code()) {
    case Status::Code::kOk:
      return s;
    case Status::Code::kNotFound:
      return Status::NotFound(msg);
    case Status::Code::kCorruption:
      return Status::Corruption(msg);
    case Status::Code::kIOError:
      return Status::IOError(msg);
    case Status::Code::kInvalidArgument:
      return Status::InvalidArgument(msg);
    case Status::Code::kNotSupported:
      return Status::NotSupported(msg);
    case Status::Code::kBusy:
      return Status::Busy(msg);
    case Status::Code::kAborted:
      return Status::Aborted(msg);
  }
  return s;
}

uint64_t TtlMs(double seconds) {
  if (seconds <= 0) return 0;  // never expires
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(seconds * 1000)));
}

// ---------------------------------------------------------------------------------------------
// Commands

struct PutArgs {
  std::string key, value;
  double ttl_seconds = 0;
};

int CmdPut(const GlobalFlags& g, const PutArgs& a) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/true);
  if (!db.ok()) return Trouble(db.status());
  PutOptions opts;
  opts.ttl_ms = TtlMs(a.ttl_seconds);
  return CloseStore(db->get(), (*db)->Put(a.key, a.value, opts));
}

struct GetArgs {
  std::string key;
  bool raw = false;
};

int CmdGet(const GlobalFlags& g, const GetArgs& a) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  Result<std::string> value = (*db)->Get(a.key);
  if (!value.ok() && value.status().IsNotFound()) {
    Status closed = (*db)->Close();
    if (!closed.ok()) return Trouble(closed);
    std::fprintf(stderr, "varve: key %s not found\n", Quote(a.key).c_str());
    return kExitNo;
  }
  if (!value.ok()) return CloseStore(db->get(), value.status());
  Output out;
  out.Write(*value);
  if (!a.raw) out.Write("\n");
  return CloseStore(db->get(), out.Finish());
}

int CmdDel(const GlobalFlags& g, const std::string& key) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  return CloseStore(db->get(), (*db)->Delete(key));
}

struct ScanArgs {
  std::string prefix, start, end;
  uint64_t limit = UINT64_MAX;
};

int CmdScan(const GlobalFlags& g, const ScanArgs& a) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  ReadOptions opts;
  opts.prefix = a.prefix;
  opts.start = a.start;
  opts.end = a.end;
  std::unique_ptr<Iterator> it = (*db)->NewIterator(opts);
  Output out;
  std::string line;
  for (uint64_t n = 0; n < a.limit && it->Valid(); ++n, it->Next()) {
    line.assign(it->key());
    line += '\t';
    line += it->value();
    line += '\n';
    if (!out.Write(line)) break;
  }
  Status s = it->status();
  it.reset();  // the iterator must not outlive the DB
  if (s.ok()) s = out.Finish();
  return CloseStore(db->get(), s);
}

enum class LoadFormat { kTsv, kJsonl };

struct LoadArgs {
  std::string file;
  LoadFormat format = LoadFormat::kTsv;
};

// Checked per line so that the error names the line, not the batch it would have failed.
std::string CheckSizes(std::string_view key, std::string_view value) {
  if (key.size() > format::kMaxKeyBytes) {
    return "key of " + std::to_string(key.size()) + " bytes exceeds the limit of " +
           std::to_string(format::kMaxKeyBytes);
  }
  if (value.size() > format::kMaxValueBytes) {
    return "value of " + std::to_string(value.size()) + " bytes exceeds the limit of " +
           std::to_string(format::kMaxValueBytes);
  }
  return "";
}

// Parses one line into batch; returns what is wrong with it, or "" if it is fine.
std::string ParseTsvLine(const std::string& line, WriteBatch* batch) {
  size_t tab = line.find('\t');
  if (tab == std::string::npos) return "no tab between key and value";
  std::string_view key = std::string_view(line).substr(0, tab);
  std::string_view value = std::string_view(line).substr(tab + 1);
  if (std::string bad = CheckSizes(key, value); !bad.empty()) return bad;
  batch->Put(key, value);
  return "";
}

std::string ParseJsonlLine(const std::string& line, WriteBatch* batch) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return "not valid JSON";
  if (!j.is_object()) return "expected an object {\"key\": ..., \"value\": ...}";
  for (const auto& [name, v] : j.items()) {
    if (name != "key" && name != "value" && name != "ttl") {
      return "unknown field \"" + name + "\" (expected key, value, ttl)";
    }
  }
  auto key = j.find("key");
  auto value = j.find("value");
  if (key == j.end() || !key->is_string()) return "\"key\" must be a string";
  if (value == j.end() || !value->is_string()) return "\"value\" must be a string";
  uint64_t ttl_ms = 0;
  if (auto ttl = j.find("ttl"); ttl != j.end()) {
    double seconds = ttl->is_number() ? ttl->get<double>() : -1;
    if (!(seconds >= 0 && seconds <= kMaxTtlSeconds)) {
      return "\"ttl\" must be a number of seconds >= 0 (0 = never expires)";
    }
    ttl_ms = TtlMs(seconds);
  }
  const std::string& k = key->get_ref<const std::string&>();
  const std::string& v = value->get_ref<const std::string&>();
  if (std::string bad = CheckSizes(k, v); !bad.empty()) return bad;
  batch->Put(k, v, ttl_ms);
  return "";
}

int CmdLoad(const GlobalFlags& g, const LoadArgs& a) {
  const bool from_stdin = a.file == "-";
  const std::string name = from_stdin ? "<stdin>" : a.file;
  std::ifstream file;
  if (!from_stdin) {
    file.open(a.file, std::ios::binary);
    if (!file) return Trouble(Status::IOError(a.file + ": " + std::strerror(errno)));
  }
  std::istream& in = from_stdin ? std::cin : file;

  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/true);
  if (!db.ok()) return Trouble(db.status());
  auto start = std::chrono::steady_clock::now();
  WriteBatch batch;
  uint64_t loaded = 0, line_no = 0;
  auto loaded_before = [&] {
    if (loaded == 0) return std::string(" (nothing was loaded)");
    return " (the " + Plural(loaded, "record") + " before line " + std::to_string(line_no) +
           (loaded == 1 ? " was" : " were") + " loaded)";
  };
  auto commit = [&]() -> Status {
    if (batch.Count() == 0) return Status::Ok();
    Status s = (*db)->Write(batch);
    if (!s.ok()) {
      return Annotate(s, "; writing the " + Plural(batch.Count(), "record") + " up to " + name +
                             " line " + std::to_string(line_no) + loaded_before());
    }
    loaded += batch.Count();
    batch.Clear();
    return s;
  };

  std::string line;
  Status s;
  while (s.ok() && std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::string bad =
        a.format == LoadFormat::kTsv ? ParseTsvLine(line, &batch) : ParseJsonlLine(line, &batch);
    if (!bad.empty()) {
      // Commit the good lines first, so that exactly the lines before this one are loaded.
      s = commit();
      if (s.ok()) {
        s = Status::InvalidArgument(name + " line " + std::to_string(line_no) + ": " + bad +
                                    loaded_before());
      }
      break;
    }
    if (batch.Count() >= kLoadBatchRecords || batch.ByteSize() >= kLoadBatchBytes) s = commit();
  }
  if (s.ok() && in.bad()) {
    int err = errno;
    ++line_no;
    s = Status::IOError(name + " line " + std::to_string(line_no) + ": " + std::strerror(err) +
                        loaded_before());
  }
  if (s.ok()) s = commit();
  int rc = CloseStore(db->get(), s);
  if (rc == kExitOk) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "varve: loaded %s from %s in %.3f s\n", Plural(loaded, "record").c_str(),
                 name.c_str(), seconds);
  }
  return rc;
}

nlohmann::ordered_json StatsJson(const Stats& st) {
  nlohmann::ordered_json j;
  j["keys"] = st.keys;
  j["live_bytes"] = st.live_bytes;
  j["dead_bytes"] = st.dead_bytes;
  j["segments"] = st.segments;
  j["sealed_segments"] = st.sealed_segments;
  j["disk_bytes"] = st.disk_bytes;
  j["compactions"] = st.compactions;
  j["compaction_bytes_written"] = st.compaction_bytes_written;
  j["compaction_bytes_reclaimed"] = st.compaction_bytes_reclaimed;
  j["user_bytes_written"] = st.user_bytes_written;
  j["log_bytes_written"] = st.log_bytes_written;
  j["puts"] = st.puts;
  j["deletes"] = st.deletes;
  j["gets"] = st.gets;
  j["get_misses"] = st.get_misses;
  j["skipped_unchanged_writes"] = st.skipped_unchanged_writes;
  j["syncs"] = st.syncs;
  j["write_groups"] = st.write_groups;
  j["index_memory_bytes"] = st.index_memory_bytes;
  j["last_sequence"] = st.last_sequence;
  j["durable_sequence"] = st.durable_sequence;
  j["index_from_checkpoint"] = st.index_from_checkpoint;
  j["index_replayed_segments"] = st.index_replayed_segments;
  j["tables"] = st.tables;
  j["table_entries"] = st.table_entries;
  j["write_amplification"] = st.write_amplification;
  return j;
}

int CmdAttach(const GlobalFlags& g, const std::string& file) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/true);
  if (!db.ok()) return Trouble(db.status());
  std::string name;
  Status s = (*db)->AttachTable(file, &name);
  if (s.ok()) std::fprintf(stderr, "attached %s as table %s\n", file.c_str(), name.c_str());
  return CloseStore(db->get(), s);
}

int CmdDetach(const GlobalFlags& g, const std::string& name) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  return CloseStore(db->get(), (*db)->DetachTable(name));
}

int CmdStats(const GlobalFlags& g) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  Output out;
  out.Write(StatsJson((*db)->GetStats()).dump(2) + "\n");
  return CloseStore(db->get(), out.Finish());
}

int CmdCompact(const GlobalFlags& g) {
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  Stats before = (*db)->GetStats();
  auto start = std::chrono::steady_clock::now();
  Status s = (*db)->Compact();
  if (!s.ok()) return CloseStore(db->get(), s);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Stats after = (*db)->GetStats();
  auto row = [](const char* name, uint64_t from, uint64_t to) {
    return std::string(name) + ": " + std::to_string(from) + " -> " + std::to_string(to) + "\n";
  };
  char took[64];
  std::snprintf(took, sizeof(took), "compacted in %.3f s\n", seconds);
  Output out;
  out.Write(row("segments", before.segments, after.segments) +
            row("disk_bytes", before.disk_bytes, after.disk_bytes) +
            row("dead_bytes", before.dead_bytes, after.dead_bytes) + took);
  return CloseStore(db->get(), out.Finish());
}

int CmdRepair(const GlobalFlags& g) {
  RepairReport report;
  Status s = RepairStore(Env::Default(), g.data_dir, &report);
  if (!s.ok()) return Trouble(s);
  Output out;
  for (const std::string& note : report.notes) out.Write(note + "\n");
  Result<std::unique_ptr<DB>> db = OpenStore(g, /*create=*/false);
  if (!db.ok()) return Trouble(db.status());
  out.Write("repaired " + Plural(report.segments_rewritten, "segment") + " of " +
            std::to_string(report.segments) + " (" + Plural(report.records_kept, "record") +
            " kept, " + Plural(report.bytes_dropped, "damaged byte") +
            " dropped); the store opens with " + Plural((*db)->GetStats().keys, "key") + "\n");
  return CloseStore(db->get(), out.Finish());
}

// Reads the files directly: no DB is opened and the LOCK is not taken.
int CmdCheck(const GlobalFlags& g) {
  CheckReport report;
  Status s = CheckStore(Env::Default(), g.data_dir, &report);
  if (!s.ok()) return Trouble(s);
  Output out;
  for (const Damage& d : report.damage) {
    out.Write(d.file + " offset " + std::to_string(d.offset) + ": " + d.what + "\n");
  }
  std::string summary = "checked " + Plural(report.segments, "segment") + " (" +
                        Plural(report.records, "record") + ") and " +
                        Plural(report.hint_files, "hint file") + ", " +
                        Plural(report.bytes, "byte") + ": ";
  summary +=
      report.damage.empty() ? "no damage\n" : Plural(report.damage.size(), "problem") + " found\n";
  out.Write(summary);
  s = out.Finish();
  if (!s.ok()) return Trouble(s);
  return report.damage.empty() ? kExitOk : kExitNo;
}

// ---------------------------------------------------------------------------------------------
// Command line

constexpr const char* kFooter = R"(
Keys and values are taken byte for byte as given; put -- before one that starts with '-'.

Exit status: 0 success; 1 get found no such key, or check found damage; 2 an error (bad usage,
I/O error, corruption, a store that another process has open), explained on stderr.

Examples:
  varve -d data put user:1 '{"name":"Ada"}' --ttl 3600
  varve -d data get user:1
  varve -d data --index ordered scan --prefix user: --limit 10
  varve -d data load dump.jsonl --format jsonl
  varve -d data check)";

int Main(int argc, char** argv) {
  CLI::App app("varve: command-line tool for a Varve key-value store", "varve");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand

  GlobalFlags g;
  std::string index = "hash", durability = "none";
  app.add_option("-d,--data-dir", g.data_dir,
                 "Store directory (put and load create it); needed by every command but table")
      ->type_name("DIR");
  app.add_option("--index", index,
                 "In-memory index: hash (smallest; scans in no particular order) or ordered "
                 "(scans in key order)")
      ->type_name("KIND")
      ->transform(CLI::IsMember({"hash", "ordered"}, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--durability", durability,
                 "When writes reach the disk: none (when the command closes the store), "
                 "interval, batch, or sync (before each write returns)")
      ->type_name("MODE")
      ->transform(CLI::IsMember({"none", "interval", "batch", "sync"}, CLI::ignore_case))
      ->capture_default_str();
  app.add_option("--segment-size-mb", g.segment_size_mb,
                 "Seal a segment file once it reaches this size")
      ->type_name("N")
      ->check(CLI::Range(1, 2048))
      ->capture_default_str();

  PutArgs put_args;
  CLI::App* put = app.add_subcommand("put", "Store VALUE under KEY, replacing any value");
  put->add_option("KEY", put_args.key, "Key")->required();
  put->add_option("VALUE", put_args.value, "Value")->required();
  put->add_option("--ttl", put_args.ttl_seconds,
                  "Expire the key after SECONDS (fractions allowed; 0 = never, the default)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, kMaxTtlSeconds));
  put->footer("\nExample: varve -d DIR put session:42 token --ttl 3600");

  GetArgs get_args;
  CLI::App* get = app.add_subcommand("get", "Print the value of KEY");
  get->add_option("KEY", get_args.key, "Key")->required();
  get->add_flag("--raw", get_args.raw, "Print the value's exact bytes, without a newline");
  get->footer(
      "\nPrints the value and a newline. A missing or expired key prints nothing on stdout, a\n"
      "message on stderr, and exits 1.");

  std::string del_key;
  CLI::App* del = app.add_subcommand("del", "Delete KEY");
  del->add_option("KEY", del_key, "Key")->required();
  del->footer("\nDeleting a missing key is not an error.");

  ScanArgs scan_args;
  CLI::App* scan = app.add_subcommand("scan", "Print KEY<TAB>VALUE lines");
  scan->add_option("--prefix", scan_args.prefix, "Only keys starting with P")->type_name("P");
  scan->add_option("--start", scan_args.start, "Only keys >= S")->type_name("S");
  scan->add_option("--end", scan_args.end, "Only keys < E")->type_name("E");
  scan->add_option("--limit", scan_args.limit, "Print at most N records")->type_name("N");
  scan->footer(
      "\nOne line per live key: the key, a tab, the value, a newline; bytes as stored. Keys come\n"
      "in key order with --index ordered, else in no particular order (the filters then check\n"
      "every key).\n"
      "\nExample: varve -d DIR --index ordered scan --prefix user: --limit 10");

  LoadArgs load_args;
  std::string format = "tsv";
  CLI::App* load = app.add_subcommand("load", "Bulk-load records from a file or stdin");
  load->add_option("FILE", load_args.file, "Input file, or - for stdin")->required();
  load->add_option("--format", format, "Input format")
      ->type_name("FORMAT")
      ->transform(CLI::IsMember({"tsv", "jsonl"}, CLI::ignore_case))
      ->capture_default_str();
  load->footer(
      "\ntsv:   KEY<TAB>VALUE per line; the value is everything after the first tab, up to the\n"
      "       newline (bytes as they are: a \\r before the newline stays in the value).\n"
      "jsonl: {\"key\": \"K\", \"value\": \"V\", \"ttl\": SECONDS} per line; ttl is optional.\n"
      "Empty lines are skipped. A malformed line stops the load with an error naming the line;\n"
      "the records before it stay loaded. Records are written in atomic batches of up to " +
      std::to_string(kLoadBatchRecords) +
      ".\n"
      "\nExample: varve -d DIR load dump.jsonl --format jsonl");

  std::string attach_file, detach_name;
  CLI::App* attach = app.add_subcommand(
      "attach", "Attach a table file (varve table build) as a read-only layer under live data");
  attach->add_option("FILE", attach_file, "Table file")->required();
  attach->footer(
      "\nThe file is copied into DIR/tables. Reads see live data first, then the newest table.\n"
      "Attaching a file with the base name of an attached table replaces it atomically.");
  CLI::App* detach = app.add_subcommand("detach", "Remove an attached table layer");
  detach->add_option("NAME", detach_name, "The table's name (its file's base name)")->required();

  CLI::App* stats = app.add_subcommand("stats", "Print the store's statistics as JSON");
  CLI::App* compact =
      app.add_subcommand("compact", "Rewrite segments that hold dead records, reclaiming space");
  compact->footer("\nPrints segments, disk_bytes and dead_bytes before -> after.");
  CLI::App* repair = app.add_subcommand(
      "repair", "Rewrite damaged segments with their intact records (store must be closed)");
  repair->footer(
      "\nEach damaged segment is rewritten with exactly its intact records (same sequence\n"
      "numbers) and the original is moved to DIR/lost+found/. Where damage destroyed a key's\n"
      "newest record, an older version of that key can become visible again. Prints one line per\n"
      "rewritten segment, then opens the store to confirm it is consistent.");
  CLI::App* check =
      app.add_subcommand("check", "Verify every segment and hint file; exit 1 on damage");
  check->footer(
      "\nReads the files without opening the store, so it also works while another process has\n"
      "the store open. Prints each problem as 'FILE offset N: WHAT', then a summary line.\n"
      "Exits 0 if the store is clean, 1 if damage was found, 2 if the directory cannot be read.");

  std::shared_ptr<TableCommands> table = AddTableCommands(&app);

  // Set after the subcommands so that they do not inherit it.
  app.footer(kFooter);
  if (argc == 1) {
    std::fputs(app.help().c_str(), stderr);
    return kExitTrouble;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help (rc 0) or the error
    return rc == 0 ? kExitOk : kExitTrouble;
  }

  if (TableCommandSelected(*table)) return RunTableCommands(*table);
  if (g.data_dir.empty()) {
    std::fputs("--data-dir is required\nRun with --help for more information.\n", stderr);
    return kExitTrouble;
  }

  g.index = index == "ordered" ? IndexKind::kOrdered : IndexKind::kHash;
  g.durability = durability == "interval" ? Durability::kInterval
                 : durability == "batch"  ? Durability::kBatch
                 : durability == "sync"   ? Durability::kSync
                                          : Durability::kNone;
  load_args.format = format == "jsonl" ? LoadFormat::kJsonl : LoadFormat::kTsv;

  if (*put) return CmdPut(g, put_args);
  if (*get) return CmdGet(g, get_args);
  if (*del) return CmdDel(g, del_key);
  if (*scan) return CmdScan(g, scan_args);
  if (*load) return CmdLoad(g, load_args);
  if (*stats) return CmdStats(g);
  if (*attach) return CmdAttach(g, attach_file);
  if (*detach) return CmdDetach(g, detach_name);
  if (*compact) return CmdCompact(g);
  if (*check) return CmdCheck(g);
  if (*repair) return CmdRepair(g);
  return kExitTrouble;  // unreachable: require_subcommand(1)
}

}  // namespace
}  // namespace varve

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::ios::sync_with_stdio(false);
  return varve::Main(argc, argv);
}

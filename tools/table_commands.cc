#include "table_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "varve/table.h"

namespace varve {

struct TableCommands {
  CLI::App* table = nullptr;
  CLI::App* build = nullptr;
  CLI::App* merge = nullptr;
  CLI::App* get = nullptr;
  CLI::App* scan = nullptr;
  CLI::App* inspect = nullptr;
  CLI::App* check = nullptr;

  std::string in, out, file, key, prefix, start, end;
  std::vector<std::string> inputs;
  std::string format = "tsv";
  std::string compression = "lz4";
  uint32_t block_size = 4096;
  uint64_t memory_mb = 256;
  bool sorted = false;
  bool keep_tombstones = false;
  bool tombstones = false;
  bool raw = false;
};

namespace {

constexpr int kExitOk = 0;
constexpr int kExitNo = 1;
constexpr int kExitTrouble = 2;

int Trouble(const Status& s) {
  std::fprintf(stderr, "varve: %s\n", s.ToString().c_str());
  return kExitTrouble;
}

Result<TableOptions> MakeOptions(const TableCommands& t) {
  TableOptions o;
  VARVE_ASSIGN_OR_RETURN(o.compression, ParseTableCompression(t.compression));
  o.block_size_bytes = t.block_size;
  return o;
}

// One input record: tombstone when deleted.
struct Entry {
  std::string key, value;
  bool tombstone = false;
};

// Parses a line; returns what is wrong with it, or "".
std::string ParseLine(bool jsonl, const std::string& line, Entry* e) {
  if (!jsonl) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) return "no tab between key and value";
    e->key.assign(line, 0, tab);
    e->value.assign(line, tab + 1);
    e->tombstone = false;
    return "";
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return "not valid JSON";
  if (!j.is_object()) return "expected an object {\"key\": ..., \"value\": ...}";
  for (const auto& [name, v] : j.items()) {
    if (name != "key" && name != "value" && name != "delete") {
      return "unknown field \"" + name + "\" (expected key, value, delete)";
    }
  }
  auto key = j.find("key");
  auto value = j.find("value");
  auto del = j.find("delete");
  if (key == j.end() || !key->is_string()) return "\"key\" must be a string";
  e->tombstone = del != j.end() && del->is_boolean() && del->get<bool>();
  if (del != j.end() && !del->is_boolean()) return "\"delete\" must be true or false";
  if (e->tombstone) {
    if (value != j.end()) return "a deleted key has no \"value\"";
    e->value.clear();
  } else {
    if (value == j.end() || !value->is_string()) return "\"value\" must be a string";
    e->value = value->get<std::string>();
  }
  e->key = key->get<std::string>();
  return "";
}

Status AddEntry(TableBuilder* b, const Entry& e) {
  return e.tombstone ? b->AddTombstone(e.key) : b->Add(e.key, e.value);
}

// Sorts a run (stable, so that of equal keys the later line stays last) and writes it, keeping
// only the last record of each key.
Status WriteRun(std::vector<Entry>* run, const std::string& path, const TableOptions& o) {
  std::stable_sort(run->begin(), run->end(),
                   [](const Entry& a, const Entry& b) { return a.key < b.key; });
  VARVE_ASSIGN_OR_RETURN(auto b, TableBuilder::Create(path, o));
  for (size_t i = 0; i < run->size(); ++i) {
    if (i + 1 < run->size() && (*run)[i + 1].key == (*run)[i].key) continue;
    VARVE_RETURN_IF_ERROR(AddEntry(b.get(), (*run)[i]));
  }
  run->clear();
  return b->Finish();
}

int CmdBuild(const TableCommands& t) {
  auto options = MakeOptions(t);
  if (!options.ok()) return Trouble(options.status());
  const bool from_stdin = t.in == "-";
  const std::string name = from_stdin ? "<stdin>" : t.in;
  std::ifstream file;
  if (!from_stdin) {
    file.open(t.in, std::ios::binary);
    if (!file) return Trouble(Status::IOError(t.in + ": " + std::strerror(errno)));
  }
  std::istream& in = from_stdin ? std::cin : file;
  const bool jsonl = t.format == "jsonl";
  auto start = std::chrono::steady_clock::now();

  std::string line;
  Entry e;
  uint64_t line_no = 0, records = 0;
  auto bad_line = [&](const std::string& what) {
    return Trouble(
        Status::InvalidArgument(name + " line " + std::to_string(line_no) + ": " + what));
  };

  if (t.sorted) {
    // Streams straight into the builder: constant memory, keys must be strictly increasing.
    auto b = TableBuilder::Create(t.out, *options);
    if (!b.ok()) return Trouble(b.status());
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      if (std::string bad = ParseLine(jsonl, line, &e); !bad.empty()) return bad_line(bad);
      Status s = AddEntry(b->get(), e);
      if (!s.ok()) return bad_line(s.message());
      ++records;
    }
    if (in.bad()) return Trouble(Status::IOError(name + ": read error"));
    Status s = (*b)->Finish();
    if (!s.ok()) return Trouble(s);
  } else {
    // Sorted runs of up to --memory-mb; more than one run are spilled as tables beside OUT and
    // merged (later runs win, as later lines do).
    const uint64_t budget = t.memory_mb << 20;
    std::vector<Entry> run;
    uint64_t run_bytes = 0;
    std::vector<std::string> run_paths;
    TableOptions run_options = *options;
    run_options.compression = TableCompression::kNone;
    run_options.sync = false;
    auto cleanup = [&] {
      for (auto& p : run_paths) std::remove(p.c_str());
    };
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      if (std::string bad = ParseLine(jsonl, line, &e); !bad.empty()) {
        cleanup();
        return bad_line(bad);
      }
      run_bytes += e.key.size() + e.value.size() + sizeof(Entry);
      run.push_back(std::move(e));
      ++records;
      if (run_bytes >= budget) {
        run_paths.push_back(t.out + ".run" + std::to_string(run_paths.size()) + ".tmp");
        Status s = WriteRun(&run, run_paths.back(), run_options);
        if (!s.ok()) {
          cleanup();
          return Trouble(s);
        }
        run_bytes = 0;
      }
    }
    if (in.bad()) {
      cleanup();
      return Trouble(Status::IOError(name + ": read error"));
    }
    Status s;
    if (run_paths.empty()) {
      s = WriteRun(&run, t.out, *options);
    } else {
      if (!run.empty()) {
        run_paths.push_back(t.out + ".run" + std::to_string(run_paths.size()) + ".tmp");
        s = WriteRun(&run, run_paths.back(), run_options);
      }
      std::vector<std::shared_ptr<TableReader>> readers;
      for (auto& p : run_paths) {
        if (!s.ok()) break;
        auto r = TableReader::Open(p);
        if (!r.ok()) {
          s = r.status();
        } else {
          readers.push_back(*r);
        }
      }
      if (s.ok()) {
        MergeOptions mo;
        mo.table = *options;
        mo.keep_tombstones = true;
        s = MergeTables(readers, t.out, mo);
      }
      readers.clear();
      cleanup();
    }
    if (!s.ok()) return Trouble(s);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto r = TableReader::Open(t.out);
  if (!r.ok()) return Trouble(r.status());
  std::fprintf(stderr, "built %s: %llu records from %llu input lines in %.2f s\n", t.out.c_str(),
               static_cast<unsigned long long>((*r)->properties().entries),
               static_cast<unsigned long long>(records), secs);
  return kExitOk;
}

int CmdMerge(const TableCommands& t) {
  auto options = MakeOptions(t);
  if (!options.ok()) return Trouble(options.status());
  std::vector<std::shared_ptr<TableReader>> readers;
  for (auto& p : t.inputs) {
    auto r = TableReader::Open(p);
    if (!r.ok()) return Trouble(r.status());
    readers.push_back(*r);
  }
  MergeOptions mo;
  mo.table = *options;
  mo.keep_tombstones = t.keep_tombstones;
  auto start = std::chrono::steady_clock::now();
  Status s = MergeTables(readers, t.out, mo);
  if (!s.ok()) return Trouble(s);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "merged %zu tables into %s in %.2f s\n", readers.size(), t.out.c_str(),
               secs);
  return kExitOk;
}

bool Write(std::string_view s) { return std::fwrite(s.data(), 1, s.size(), stdout) == s.size(); }

int Finish() {
  if (std::fflush(stdout) != 0 && errno != EPIPE) {
    return Trouble(Status::IOError(std::string("writing to stdout: ") + std::strerror(errno)));
  }
  return kExitOk;
}

int CmdGet(const TableCommands& t) {
  auto r = TableReader::Open(t.file);
  if (!r.ok()) return Trouble(r.status());
  std::string value;
  Status s = (*r)->Get(t.key, &value);
  if (s.IsNotFound()) {
    std::fprintf(stderr, "varve: key '%s' not found in %s\n", t.key.c_str(), t.file.c_str());
    return kExitNo;
  }
  if (!s.ok()) return Trouble(s);
  Write(value);
  if (!t.raw) Write("\n");
  return Finish();
}

int CmdScan(const TableCommands& t) {
  auto r = TableReader::Open(t.file);
  if (!r.ok()) return Trouble(r.status());
  std::string lower = std::max(t.prefix, t.start);
  std::string upper = t.end;
  if (!t.prefix.empty()) {
    std::string pe = TablePrefixEnd(t.prefix);
    if (upper.empty() || (!pe.empty() && pe < upper)) upper = pe;
  }
  auto it = (*r)->NewIterator();
  std::string line;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    if (!upper.empty() && it->key() >= upper) break;
    if (!t.prefix.empty() && !it->key().starts_with(t.prefix)) break;
    if (it->is_tombstone() && !t.tombstones) continue;
    line.assign(it->key());
    line += '\t';
    if (it->is_tombstone()) {
      line += "(deleted)";
    } else {
      line += it->value();
    }
    line += '\n';
    if (!Write(line)) break;
  }
  if (!it->status().ok()) return Trouble(it->status());
  return Finish();
}

int CmdInspect(const TableCommands& t) {
  auto r = TableReader::Open(t.file);
  if (!r.ok()) return Trouble(r.status());
  const TableProperties& p = (*r)->properties();
  auto per_key = [&](uint64_t bytes) {
    return p.entries == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(p.entries);
  };
  nlohmann::json j;
  j["file"] = t.file;
  j["file_bytes"] = p.file_bytes;
  j["entries"] = p.entries;
  j["tombstones"] = p.tombstones;
  j["blocks"] = p.blocks;
  j["compression"] = TableCompressionName(p.compression);
  j["key_bytes"] = p.key_bytes;
  j["value_bytes"] = p.value_bytes;
  j["raw_block_bytes"] = p.raw_block_bytes;
  j["data_bytes"] = p.data_bytes;
  j["compression_ratio"] =
      p.data_bytes == 0 ? 1.0 : static_cast<double>(p.raw_block_bytes) / p.data_bytes;
  j["sparse_index_bytes"] = p.sparse_index_bytes;
  j["hash_index_bytes"] = p.hash_index_bytes;
  j["hash_slots"] = p.hash_slots;
  j["index_bytes_per_key"] = per_key(p.sparse_index_bytes + p.hash_index_bytes);
  j["hash_index_bytes_per_key"] = per_key(p.hash_index_bytes);
  j["min_key"] = p.min_key;
  j["max_key"] = p.max_key;
  Write(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  return Finish();
}

int CmdCheck(const TableCommands& t) {
  auto r = TableReader::Open(t.file);
  Status s = r.ok() ? (*r)->Check() : r.status();
  if (s.ok()) {
    std::printf("%s: ok, %llu records\n", t.file.c_str(),
                static_cast<unsigned long long>((*r)->properties().entries));
    return Finish();
  }
  std::printf("%s\n", s.ToString().c_str());
  std::fflush(stdout);
  return s.IsCorruption() || s.IsNotSupported() ? kExitNo : kExitTrouble;
}

void AddTableOptions(CLI::App* cmd, TableCommands* t) {
  cmd->add_option("--compression", t->compression, "Block compression: none, lz4 or zstd")
      ->type_name("C")
      ->check(CLI::IsMember({"none", "lz4", "zstd"}))
      ->capture_default_str();
  cmd->add_option("--block-size", t->block_size, "Uncompressed bytes per data block")
      ->type_name("BYTES")
      ->check(CLI::Range(256, 1 << 20))
      ->capture_default_str();
}

}  // namespace

std::shared_ptr<TableCommands> AddTableCommands(CLI::App* app) {
  auto t = std::make_shared<TableCommands>();
  t->table = app->add_subcommand("table", "Build, merge and read immutable sorted table files");
  t->table->require_subcommand(1);

  t->build = t->table->add_subcommand("build", "Build a table from KEY<TAB>VALUE or JSON lines");
  t->build->add_option("IN", t->in, "Input file, or - for stdin")->required();
  t->build->add_option("OUT", t->out, "Table file to write")->required();
  t->build->add_option("--format", t->format, "Input format: tsv or jsonl")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"tsv", "jsonl"}))
      ->capture_default_str();
  t->build->add_flag("--sorted", t->sorted,
                     "Input is in strictly increasing key order: stream it (constant memory); an "
                     "out-of-order or duplicate key is an error");
  t->build
      ->add_option("--memory-mb", t->memory_mb,
                   "Sort budget: larger unsorted input is sorted in runs spilled beside OUT")
      ->type_name("MB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  AddTableOptions(t->build, t.get());
  t->build->footer(
      "\nUnsorted input (the default) may hold a key more than once: the last line wins.\n"
      "jsonl: {\"key\": \"K\", \"value\": \"V\"} or {\"key\": \"K\", \"delete\": true} (a "
      "tombstone)\n"
      "per line. Empty lines are skipped.\n"
      "\nExample: varve table build dump.tsv users.vtb --compression zstd");

  t->merge = t->table->add_subcommand("merge", "Merge tables into one (later inputs win)");
  t->merge->add_option("IN", t->inputs, "Input tables, oldest first")->required();
  t->merge->add_option("-o,--output", t->out, "Table file to write")->required();
  t->merge->add_flag("--keep-tombstones", t->keep_tombstones,
                     "Keep tombstones in the output (it will be layered over older data)");
  AddTableOptions(t->merge, t.get());

  t->get = t->table->add_subcommand("get", "Print the value of KEY; exit 1 if missing");
  t->get->add_option("FILE", t->file, "Table file")->required();
  t->get->add_option("KEY", t->key, "Key")->required();
  t->get->add_flag("--raw", t->raw, "Print the value's exact bytes, without a newline");

  t->scan = t->table->add_subcommand("scan", "Print KEY<TAB>VALUE lines in key order");
  t->scan->add_option("FILE", t->file, "Table file")->required();
  t->scan->add_option("--prefix", t->prefix, "Only keys starting with P")->type_name("P");
  t->scan->add_option("--start", t->start, "Only keys >= S")->type_name("S");
  t->scan->add_option("--end", t->end, "Only keys < E")->type_name("E");
  t->scan->add_flag("--tombstones", t->tombstones, "Also print tombstones, as KEY<TAB>(deleted)");

  t->inspect = t->table->add_subcommand(
      "inspect", "Print counts, sizes, index bytes per key and compression ratio as JSON");
  t->inspect->add_option("FILE", t->file, "Table file")->required();

  t->check = t->table->add_subcommand(
      "check", "Verify every block, the indexes and the footer; exit 1 on damage");
  t->check->add_option("FILE", t->file, "Table file")->required();
  return t;
}

bool TableCommandSelected(const TableCommands& t) { return t.table->parsed(); }

int RunTableCommands(const TableCommands& t) {
  if (*t.build) return CmdBuild(t);
  if (*t.merge) return CmdMerge(t);
  if (*t.get) return CmdGet(t);
  if (*t.scan) return CmdScan(t);
  if (*t.inspect) return CmdInspect(t);
  if (*t.check) return CmdCheck(t);
  return kExitTrouble;
}

}  // namespace varve

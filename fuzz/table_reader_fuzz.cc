// fuzz_table_reader: TableReader (docs/format.md, "Table file") over fuzzer-made bytes.
// Input: a mode byte, then:
//   mode & 1 == 0 (raw): the rest is a table file.
//   mode & 1 == 1 (built): the rest is a script: byte C (compression = C % 3, block size 256 <<
//     (C / 3 % 4)), byte N (records to parse), then N records [u8 key len][u8 value len, 255 =
//     tombstone][key][value]; they are sorted, deduplicated and built into a valid table in
//     memory; every remaining pair of bytes [u16 position] flips one byte of that table (so the
//     fuzzer reaches past the checksums with damage at chosen places).
// Invariants (a violation traps):
//   - no crash, hang or out-of-bounds read, whatever the bytes;
//   - built mode: the undamaged table opens, passes Check and returns exactly the model; after
//     damage, every Find/iteration result is either the model's or an error (Corruption naming
//     the table), never a wrong value or a key the model does not hold;
//   - raw mode: when Check passes, iteration is in strictly increasing key order and Find
//     returns each iterated record.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "fuzz_check.h"
#include "mem_env.h"
#include "varve/table.h"

namespace varve::fuzz {
namespace {

#define TABLE_FUZZ_CHECK(cond) \
  if (!(cond)) FailInvariant(__FILE__, __LINE__, #cond)

using Model = std::map<std::string, std::optional<std::string>>;

void Exercise(const TableReader& t, const Model* model) {
  std::string v;
  bool tomb = false;
  if (model != nullptr) {
    for (auto& [k, val] : *model) {
      Status s = t.Find(k, &v, &tomb);
      if (s.ok()) {
        TABLE_FUZZ_CHECK(tomb == !val.has_value());
        if (val) TABLE_FUZZ_CHECK(v == *val);
      } else {
        TABLE_FUZZ_CHECK(s.IsCorruption() || s.IsNotFound());
      }
    }
  }
  for (const char* probe : {"", "a", "k", "\xff"}) (void)t.Find(probe, &v, &tomb);
  auto it = t.NewIterator();
  std::string prev;
  bool first = true;
  int n = 0;
  for (it->SeekToFirst(); it->Valid() && n < 100000; it->Next(), ++n) {
    if (model != nullptr) {
      auto m = model->find(std::string(it->key()));
      TABLE_FUZZ_CHECK(m != model->end());
      TABLE_FUZZ_CHECK(it->is_tombstone() == !m->second.has_value());
      if (m->second) TABLE_FUZZ_CHECK(it->value() == *m->second);
    }
    prev.assign(it->key());
    first = false;
  }
  if (!first) {
    it->Seek(prev);
    (void)it->Valid();
  }
  Status check = t.Check();
  if (check.ok()) {
    std::string last;
    bool any = false;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      TABLE_FUZZ_CHECK(!any || last < it->key());
      last.assign(it->key());
      any = true;
      TABLE_FUZZ_CHECK(t.Find(last, &v, &tomb).ok());
      TABLE_FUZZ_CHECK(tomb == it->is_tombstone() && v == it->value());
    }
    TABLE_FUZZ_CHECK(it->status().ok());
  }
}

void Built(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint8_t c = data[0];
  size_t n = data[1];
  size_t pos = 2;
  Model model;
  for (size_t i = 0; i < n && pos + 2 <= size; ++i) {
    size_t klen = data[pos], vlen = data[pos + 1];
    bool tomb = vlen == 255;
    if (tomb) vlen = 0;
    pos += 2;
    if (pos + klen + vlen > size) break;
    std::string key(reinterpret_cast<const char*>(data + pos), klen);
    std::string value(reinterpret_cast<const char*>(data + pos + klen), vlen);
    pos += klen + vlen;
    if (tomb) {
      model[key] = std::nullopt;
    } else {
      model[key] = value;
    }
  }
  MemEnv env;
  TableOptions o;
  o.env = &env;
  o.sync = false;
  o.compression = static_cast<TableCompression>(c % 3);
  o.block_size_bytes = 256u << (c / 3 % 4);
  auto b = TableBuilder::Create("t", o);
  TABLE_FUZZ_CHECK(b.ok());
  for (auto& [k, v] : model) {
    Status s = v ? (*b)->Add(k, *v) : (*b)->AddTombstone(k);
    TABLE_FUZZ_CHECK(s.ok());
  }
  TABLE_FUZZ_CHECK((*b)->Finish().ok());
  b->reset();
  const std::string* file = env.Get("t");
  TABLE_FUZZ_CHECK(file != nullptr);
  std::string bytes = *file;
  {
    auto t = TableReader::OpenFromMemory("t", bytes);
    TABLE_FUZZ_CHECK(t.ok());
    TABLE_FUZZ_CHECK((*t)->Check().ok());
    Exercise(**t, &model);
  }
  bool damaged = false;
  for (; pos + 2 <= size; pos += 2) {
    size_t at = (size_t{data[pos]} | size_t{data[pos + 1]} << 8) % bytes.size();
    if (at == 10 || at == 11) continue;  // the minor version: any is readable
    bytes[at] = static_cast<char>(bytes[at] ^ (0x01 | data[pos]));
    damaged = true;
  }
  if (!damaged) return;
  auto t = TableReader::OpenFromMemory("t", bytes);
  if (!t.ok()) {
    TABLE_FUZZ_CHECK(t.status().message().rfind("t: ", 0) == 0 || t.status().IsNotSupported());
    return;
  }
  Exercise(**t, &model);
}

}  // namespace
}  // namespace varve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if ((data[0] & 1) == 0) {
    auto t = varve::TableReader::OpenFromMemory(
        "t", std::string(reinterpret_cast<const char*>(data + 1), size - 1));
    if (t.ok()) varve::fuzz::Exercise(**t, nullptr);
  } else {
    varve::fuzz::Built(data + 1, size - 1);
  }
  return 0;
}

// Helpers shared by the table tests: keys, values, a model of a table's contents, building a
// table from a model and checking a table against one.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "varve/table.h"

namespace varve::testing {

inline std::string Key(int i) {
  char b[32];
  std::snprintf(b, sizeof b, "key%08d", i);
  return b;
}
inline std::string Value(int i, size_t len = 40) {
  std::string v = "value-" + std::to_string(i) + "-";
  while (v.size() < len) v += static_cast<char>('a' + (v.size() * 7 + i) % 26);
  return v;
}

// Model: key -> value, nullopt = tombstone.
using Model = std::map<std::string, std::optional<std::string>>;

inline void Build(const std::string& path, const Model& m, const TableOptions& o = {}) {
  auto b = TableBuilder::Create(path, o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  for (auto& [k, v] : m) {
    Status s = v ? (*b)->Add(k, *v) : (*b)->AddTombstone(k);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  Status s = (*b)->Finish();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

inline std::shared_ptr<TableReader> OpenOrDie(const std::string& path) {
  auto r = TableReader::Open(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : nullptr;
}

inline void ExpectMatches(const TableReader& t, const Model& m) {
  std::string v;
  for (auto& [k, val] : m) {
    bool tomb = false;
    Status s = t.Find(k, &v, &tomb);
    ASSERT_TRUE(s.ok()) << k << ": " << s.ToString();
    ASSERT_EQ(tomb, !val.has_value()) << k;
    if (val) {
      ASSERT_EQ(v, *val) << k;
    }
    EXPECT_EQ(t.Get(k, &v).IsNotFound(), !val.has_value());
  }
  auto it = t.NewIterator();
  auto mi = m.begin();
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++mi) {
    ASSERT_NE(mi, m.end());
    ASSERT_EQ(it->key(), mi->first);
    ASSERT_EQ(it->is_tombstone(), !mi->second.has_value());
    if (mi->second) {
      ASSERT_EQ(it->value(), *mi->second);
    }
  }
  ASSERT_TRUE(it->status().ok()) << it->status().ToString();
  EXPECT_EQ(mi, m.end());
  EXPECT_EQ(t.properties().entries, m.size());
  Status c = t.Check();
  EXPECT_TRUE(c.ok()) << c.ToString();
}

}  // namespace varve::testing

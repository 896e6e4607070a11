// Property test: random sequences of operations against a real varve::DB (on disk, in a fresh
// temporary directory per run) and a std::map model. Puts, deletes, atomic batches,
// compare-and-set / compare-and-delete, reopen and Compact() are mixed; after every step the DB
// must agree with the model, and record versions must survive reopen and compaction unchanged.
// Runs for both index kinds.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "testutil/temp_dir.h"
#include "varve/db.h"
#include "varve/options.h"
#include "varve/write_batch.h"

namespace varve {
namespace {

// ---------------------------------------------------------------------------------------------
// Operations and their generators

// Keys come from a small alphabet so that they repeat; several share prefixes, some are binary.
const std::vector<std::string>& Keys() {
  static const auto* keys = new std::vector<std::string>{"",
                                                         "a",
                                                         "aa",
                                                         "ab",
                                                         "abc",
                                                         "b",
                                                         "ba",
                                                         "bb",
                                                         std::string("\0", 1),
                                                         std::string("a\0z", 3),
                                                         "\xff",
                                                         "\xff\x01",
                                                         "k" + std::string(300, 'x')};
  return *keys;
}

// Prefixes and ranges the scans are checked with.
const std::vector<std::string>& Prefixes() {
  static const auto* prefixes = new std::vector<std::string>{
      "", "a", "ab", "abc", "abcd", "b", std::string("\0", 1), "\xff", "k", "zz"};
  return *prefixes;
}

// A value described by length and seed, so that large values cost nothing to generate or shrink.
struct ValueSpec {
  uint32_t len = 0;
  uint32_t seed = 0;
};

std::string MakeValue(const ValueSpec& v) {
  std::string s(v.len, '\0');
  uint64_t x = v.seed * 0x9e3779b97f4a7c15ull + v.len;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i % 8 == 0) {  // splitmix64
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      x = z ^ (z >> 31);
    }
    s[i] = static_cast<char>(x >> (8 * (i % 8)));
  }
  return s;
}

enum class OpKind {
  kPut,
  kDelete,
  kBatch,
  kReopen,
  kCompact,
  kCasRight,  // CompareAndSet with the version GetVersioned returned: succeeds
  kCasWrong,  // CompareAndSet with another version: Aborted
  kCadRight,  // CompareAndDelete with the current version: succeeds
  kCadWrong,  // CompareAndDelete with another version: Aborted
};

struct BatchOp {
  bool del = false;
  std::string key;
  ValueSpec value;
};

struct Op {
  OpKind kind = OpKind::kPut;
  std::string key;
  ValueSpec value;
  std::vector<BatchOp> batch;
  uint32_t wrong = 0;  // kCasWrong / kCadWrong: picks the wrong version
};

std::string Printable(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (out.size() > 24) out = out.substr(0, 20) + "...(" + std::to_string(key.size()) + ")";
  return "'" + out + "'";
}

std::ostream& operator<<(std::ostream& os, const ValueSpec& v) {
  return os << "value(len " << v.len << ", seed " << v.seed << ")";
}

std::ostream& operator<<(std::ostream& os, const Op& op) {
  switch (op.kind) {
    case OpKind::kPut:
      return os << "Put " << Printable(op.key) << " " << op.value;
    case OpKind::kDelete:
      return os << "Delete " << Printable(op.key);
    case OpKind::kBatch:
      os << "Batch [";
      for (const BatchOp& b : op.batch) {
        if (b.del) {
          os << " Delete " << Printable(b.key) << ";";
        } else {
          os << " Put " << Printable(b.key) << " " << b.value << ";";
        }
      }
      return os << " ]";
    case OpKind::kReopen:
      return os << "Reopen";
    case OpKind::kCompact:
      return os << "Compact";
    case OpKind::kCasRight:
      return os << "CompareAndSet(right version) " << Printable(op.key) << " " << op.value;
    case OpKind::kCasWrong:
      return os << "CompareAndSet(wrong version #" << op.wrong << ") " << Printable(op.key);
    case OpKind::kCadRight:
      return os << "CompareAndDelete(right version) " << Printable(op.key);
    case OpKind::kCadWrong:
      return os << "CompareAndDelete(wrong version #" << op.wrong << ") " << Printable(op.key);
  }
  return os;
}

rc::Gen<std::string> GenKey() { return rc::gen::elementOf(Keys()); }

rc::Gen<ValueSpec> GenValue() {
  // Mostly 0..300 bytes; sometimes up to 64 KiB; rarely up to 400 KiB, so that a sequence
  // fills 1 MiB segments and rolls them.
  return rc::gen::build<ValueSpec>(
      rc::gen::set(&ValueSpec::len, rc::gen::weightedOneOf<uint32_t>({
                                        {24, rc::gen::inRange<uint32_t>(0, 301)},
                                        {2, rc::gen::inRange<uint32_t>(301, (64 << 10) + 1)},
                                        {1, rc::gen::inRange<uint32_t>(64 << 10, 400 << 10)},
                                    })),
      rc::gen::set(&ValueSpec::seed, rc::gen::arbitrary<uint32_t>()));
}

rc::Gen<BatchOp> GenBatchOp() {
  return rc::gen::build<BatchOp>(
      rc::gen::set(&BatchOp::del, rc::gen::weightedElement<bool>({{1, true}, {2, false}})),
      rc::gen::set(&BatchOp::key, GenKey()), rc::gen::set(&BatchOp::value, GenValue()));
}

rc::Gen<Op> GenOpOf(OpKind kind) {
  return rc::gen::build<Op>(rc::gen::set(&Op::kind, rc::gen::just(kind)),
                            rc::gen::set(&Op::key, GenKey()), rc::gen::set(&Op::value, GenValue()),
                            rc::gen::set(&Op::wrong, rc::gen::inRange<uint32_t>(0, 6)));
}

rc::Gen<Op> GenBatch() {
  return rc::gen::build<Op>(
      rc::gen::set(&Op::kind, rc::gen::just(OpKind::kBatch)),
      rc::gen::set(&Op::batch,
                   rc::gen::resize(8, rc::gen::nonEmpty(rc::gen::container<std::vector<BatchOp>>(
                                          GenBatchOp())))));
}

rc::Gen<Op> GenOp() {
  return rc::gen::weightedOneOf<Op>({
      {10, GenOpOf(OpKind::kPut)},
      {4, GenOpOf(OpKind::kDelete)},
      {3, GenBatch()},
      {1, GenOpOf(OpKind::kReopen)},
      {1, GenOpOf(OpKind::kCompact)},
      {2, GenOpOf(OpKind::kCasRight)},
      {1, GenOpOf(OpKind::kCasWrong)},
      {1, GenOpOf(OpKind::kCadRight)},
      {1, GenOpOf(OpKind::kCadWrong)},
  });
}

// ---------------------------------------------------------------------------------------------
// The system under test and the model

std::string Where(size_t step, const Op& op) {
  std::ostringstream os;
  os << "step " << step << " (" << op << ")";
  return os.str();
}

void AssertOk(const Status& s, const std::string& what) {
  if (!s.ok()) RC_FAIL(what + ": " + s.ToString());
}

// Totals over all runs of one property, to show that segments really rolled and compaction
// really ran.
struct Coverage {
  uint64_t runs = 0;
  uint64_t runs_with_several_segments = 0;
  uint64_t compacted_segments = 0;
  uint64_t reopens = 0;
  uint64_t cas_successes = 0;
  uint64_t cas_aborts = 0;
};

class Harness {
 public:
  Harness(IndexKind kind, Coverage* coverage) : kind_(kind), coverage_(coverage) {
    options_.index = kind;
    options_.segment_size_bytes = 1 << 20;   // the minimum: segments roll often
    options_.background_compaction = false;  // only Compact() compacts
    Open();
  }

  ~Harness() { db_.reset(); }  // before dir_ goes

  void Run(const std::vector<Op>& ops) {
    ++coverage_->runs;
    for (size_t i = 0; i < ops.size(); ++i) Apply(i, ops[i]);
    CheckEverything("end of sequence");
    NoteCoverage();
    if (max_segments_ > 1) ++coverage_->runs_with_several_segments;
  }

 private:
  void Open() {
    Result<std::unique_ptr<DB>> r = DB::Open(options_, dir_.path());
    AssertOk(r.status(), "DB::Open");
    db_ = std::move(r).value();
    compactions_noted_ = 0;
  }

  void NoteCoverage() {
    Stats st = db_->GetStats();
    coverage_->compacted_segments += st.compactions - compactions_noted_;  // since the open
    compactions_noted_ = st.compactions;
    max_segments_ = std::max<uint64_t>(max_segments_, st.segments);
  }

  void Apply(size_t step, const Op& op) {
    const std::string where = Where(step, op);
    std::set<std::string> written;  // keys whose version this step must change
    switch (op.kind) {
      case OpKind::kPut: {
        std::string value = MakeValue(op.value);
        AssertOk(db_->Put(op.key, value), where);
        model_[op.key] = value;
        written.insert(op.key);
        break;
      }
      case OpKind::kDelete:
        AssertOk(db_->Delete(op.key), where);
        model_.erase(op.key);
        break;
      case OpKind::kBatch: {
        WriteBatch batch;
        std::map<std::string, std::string> next = model_;
        for (const BatchOp& b : op.batch) {
          if (b.del) {
            batch.Delete(b.key);
            next.erase(b.key);
            written.erase(b.key);
          } else {
            std::string value = MakeValue(b.value);
            batch.Put(b.key, value);
            next[b.key] = value;
            written.insert(b.key);
          }
        }
        AssertOk(db_->Write(batch), where);
        model_ = std::move(next);
        break;
      }
      case OpKind::kReopen:
        NoteCoverage();
        db_.reset();
        Open();
        ++coverage_->reopens;
        CheckEverything(where);
        break;
      case OpKind::kCompact:
        AssertOk(db_->Compact(), where);
        NoteCoverage();
        CheckEverything(where);
        break;
      case OpKind::kCasRight: {
        Result<DB::VersionedValue> cur = db_->GetVersioned(op.key);
        uint64_t expected = cur.ok() ? cur->version : 0;
        std::string value = MakeValue(op.value);
        uint64_t new_version = 0;
        AssertOk(db_->CompareAndSet(op.key, expected, value, {}, &new_version), where);
        RC_ASSERT(new_version > max_version_);
        model_[op.key] = value;
        written.insert(op.key);
        ++coverage_->cas_successes;
        break;
      }
      case OpKind::kCasWrong: {
        uint64_t wrong = WrongVersion(op);
        Status s = db_->CompareAndSet(op.key, wrong, MakeValue(op.value));
        if (!s.IsAborted()) {
          RC_FAIL(where + ": CompareAndSet with version " + std::to_string(wrong) + " returned " +
                  s.ToString() + ", want Aborted");
        }
        ++coverage_->cas_aborts;
        break;
      }
      case OpKind::kCadRight: {
        Result<DB::VersionedValue> cur = db_->GetVersioned(op.key);
        uint64_t expected = cur.ok() ? cur->version : 0;
        AssertOk(db_->CompareAndDelete(op.key, expected), where);
        model_.erase(op.key);
        ++coverage_->cas_successes;
        break;
      }
      case OpKind::kCadWrong: {
        uint64_t wrong = WrongVersion(op);
        Status s = db_->CompareAndDelete(op.key, wrong);
        if (!s.IsAborted()) {
          RC_FAIL(where + ": CompareAndDelete with version " + std::to_string(wrong) +
                  " returned " + s.ToString() + ", want Aborted");
        }
        ++coverage_->cas_aborts;
        break;
      }
    }
    CheckKeys(where, written);
  }

  // A version that is not the key's current one (0 means "absent", wrong for a present key).
  uint64_t WrongVersion(const Op& op) {
    auto it = versions_.find(op.key);
    if (it == versions_.end()) return 1 + op.wrong;  // absent: any version but 0 is wrong
    uint64_t v = it->second;
    switch (op.wrong % 3) {
      case 0:
        return 0;
      case 1:
        return v + 1 + op.wrong;
      default:
        return v - 1;  // >= 0, and 0 is wrong for a present key too
    }
  }

  // Every key of the alphabet: Get and GetVersioned agree with the model; versions of keys the
  // step did not write are unchanged; versions it wrote are new; live versions are distinct.
  void CheckKeys(const std::string& where, const std::set<std::string>& written) {
    std::map<std::string, uint64_t> versions;
    std::set<uint64_t> distinct;
    uint64_t max_version = max_version_;
    for (const std::string& key : Keys()) {
      auto it = model_.find(key);
      Result<std::string> got = db_->Get(key);
      Result<DB::VersionedValue> vgot = db_->GetVersioned(key);
      if (it == model_.end()) {
        if (!got.status().IsNotFound() || !vgot.status().IsNotFound()) {
          RC_FAIL(where + ": Get " + Printable(key) + " returned " + got.status().ToString() +
                  " / " + vgot.status().ToString() + ", want NotFound");
        }
        continue;
      }
      AssertOk(got.status(), where + ": Get " + Printable(key));
      AssertOk(vgot.status(), where + ": GetVersioned " + Printable(key));
      if (*got != it->second || vgot->value != it->second) {
        RC_FAIL(where + ": Get " + Printable(key) + " returned " + std::to_string(got->size()) +
                " bytes, want " + std::to_string(it->second.size()) + " bytes (contents differ)");
      }
      if (vgot->expiry_ms != 0) RC_FAIL(where + ": unexpected expiry on " + Printable(key));
      uint64_t v = vgot->version;
      if (!distinct.insert(v).second) {
        RC_FAIL(where + ": two live keys share version " + std::to_string(v));
      }
      auto old = versions_.find(key);
      if (written.count(key) != 0) {
        if (v <= max_version_) {
          RC_FAIL(where + ": new write to " + Printable(key) + " has version " + std::to_string(v) +
                  ", not above the previous maximum " + std::to_string(max_version_));
        }
      } else if (old == versions_.end() || old->second != v) {
        RC_FAIL(where + ": version of untouched key " + Printable(key) + " changed from " +
                (old == versions_.end() ? std::string("absent") : std::to_string(old->second)) +
                " to " + std::to_string(v));
      }
      versions[key] = v;
      max_version = std::max(max_version, v);
    }
    versions_ = std::move(versions);
    max_version_ = max_version;
    Stats st = db_->GetStats();
    if (st.keys != model_.size()) {
      RC_FAIL(where + ": Stats.keys is " + std::to_string(st.keys) + ", model has " +
              std::to_string(model_.size()));
    }
    max_segments_ = std::max<uint64_t>(max_segments_, st.segments);
  }

  struct Seen {
    std::string key;
    std::string value;
    uint64_t version;
  };

  std::vector<Seen> Iterate(const ReadOptions& ro, const std::string& where) {
    std::vector<Seen> out;
    std::unique_ptr<Iterator> it = db_->NewIterator(ro);
    for (; it->Valid(); it->Next()) {
      out.push_back(Seen{std::string(it->key()), std::string(it->value()), it->version()});
      if (out.size() > model_.size() + Keys().size()) RC_FAIL(where + ": iterator runs away");
    }
    AssertOk(it->status(), where + ": iterator status");
    return out;
  }

  // The iteration's keys, values and versions equal the model's keys with the wanted filter.
  template <typename Pred>
  void CheckIteration(const ReadOptions& ro, Pred wanted, const std::string& where) {
    std::vector<Seen> seen = Iterate(ro, where);
    if (kind_ == IndexKind::kOrdered) {
      for (size_t i = 1; i < seen.size(); ++i) {
        if (!(seen[i - 1].key < seen[i].key)) {
          RC_FAIL(where + ": ordered iteration not strictly increasing at " +
                  Printable(seen[i].key));
        }
      }
    }
    std::sort(seen.begin(), seen.end(), [](const Seen& a, const Seen& b) { return a.key < b.key; });
    std::vector<std::string> want_keys;
    for (const auto& [k, v] : model_) {
      if (wanted(k)) want_keys.push_back(k);
    }
    std::vector<std::string> got_keys;
    for (const Seen& s : seen) got_keys.push_back(s.key);
    if (got_keys != want_keys) {
      std::string msg = where + ": iteration returned [";
      for (const std::string& k : got_keys) msg += " " + Printable(k);
      msg += " ], want [";
      for (const std::string& k : want_keys) msg += " " + Printable(k);
      RC_FAIL(msg + " ]");
    }
    for (const Seen& s : seen) {
      if (s.value != model_.at(s.key)) {
        RC_FAIL(where + ": iteration value of " + Printable(s.key) + " differs from the model");
      }
      auto v = versions_.find(s.key);
      if (v == versions_.end() || v->second != s.version) {
        RC_FAIL(where + ": iteration version of " + Printable(s.key) + " is " +
                std::to_string(s.version) + ", GetVersioned said " +
                (v == versions_.end() ? std::string("absent") : std::to_string(v->second)));
      }
    }
  }

  void CheckEverything(const std::string& where) {
    CheckKeys(where, {});
    CheckIteration(
        {}, [](const std::string&) { return true; }, where + ", full iteration");
    for (const std::string& p : Prefixes()) {
      ReadOptions ro;
      ro.prefix = p;
      CheckIteration(
          ro, [&](const std::string& k) { return k.starts_with(p); },
          where + ", prefix " + Printable(p));
    }
    struct Filter {
      std::string prefix, start, end;
    };
    const std::vector<Filter> filters = {
        {"", "a", "b"},   {"", "ab", ""},  {"", "", "b"},   {"", "b", "a"},   {"", "aa", "ab"},
        {"", "\xff", ""}, {"a", "ab", ""}, {"a", "", "ab"}, {"b", "a", "bb"}, {"ab", "b", ""}};
    for (const Filter& f : filters) {
      ReadOptions ro;
      ro.prefix = f.prefix;
      ro.start = f.start;
      ro.end = f.end;
      CheckIteration(
          ro,
          [&](const std::string& k) {
            return k.starts_with(f.prefix) && k >= f.start && (f.end.empty() || k < f.end);
          },
          where + ", prefix " + Printable(f.prefix) + " range [" + Printable(f.start) + ", " +
              Printable(f.end) + ")");
    }
  }

  IndexKind kind_;
  Coverage* coverage_;
  testing::TempDir dir_;
  Options options_;
  std::unique_ptr<DB> db_;
  std::map<std::string, std::string> model_;
  std::map<std::string, uint64_t> versions_;  // live keys' versions after the last step
  uint64_t max_version_ = 0;
  uint64_t max_segments_ = 0;
  uint64_t compactions_noted_ = 0;  // of the current open, already added to coverage_
};

std::string KindName(const ::testing::TestParamInfo<IndexKind>& info) {
  return info.param == IndexKind::kHash ? "Hash" : "Ordered";
}

class DBPropertyTest : public ::testing::TestWithParam<IndexKind> {};

INSTANTIATE_TEST_SUITE_P(AllKinds, DBPropertyTest,
                         ::testing::Values(IndexKind::kHash, IndexKind::kOrdered), KindName);

TEST_P(DBPropertyTest, MatchesModel) {
  const IndexKind kind = GetParam();
  Coverage coverage;
  auto start = std::chrono::steady_clock::now();
  bool ok = rc::check("DB agrees with a std::map model", [kind, &coverage] {
    // Up to ~250 operations per sequence (rapidcheck's size grows to 100 over the runs).
    const std::vector<Op> ops = *rc::gen::scale(2.5, rc::gen::container<std::vector<Op>>(GenOp()));
    Harness harness(kind, &coverage);
    harness.Run(ops);
  });
  EXPECT_TRUE(ok) << "see the counterexample above";
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  std::printf(
      "[ coverage ] runs %llu, runs with several segments %llu, segments compacted %llu, "
      "reopens %llu, CAS ok %llu, CAS aborted %llu, %lld ms\n",
      static_cast<unsigned long long>(coverage.runs),
      static_cast<unsigned long long>(coverage.runs_with_several_segments),
      static_cast<unsigned long long>(coverage.compacted_segments),
      static_cast<unsigned long long>(coverage.reopens),
      static_cast<unsigned long long>(coverage.cas_successes),
      static_cast<unsigned long long>(coverage.cas_aborts), static_cast<long long>(elapsed_ms));
  if (ok) {
    // The property must have exercised what it claims to.
    EXPECT_GT(coverage.runs_with_several_segments, 0u) << "no run rolled a segment";
    EXPECT_GT(coverage.compacted_segments, 0u) << "no run compacted a segment";
    EXPECT_GT(coverage.reopens, 0u);
    EXPECT_GT(coverage.cas_successes, 0u);
    EXPECT_GT(coverage.cas_aborts, 0u);
  }
}

// Found by DBPropertyTest.MatchesModel: versions must not repeat after a reopen even when
// compaction dropped every record that carried the highest sequence numbers (segment headers
// keep the sequence floor), or a CompareAndSet holding an old version would succeed (ABA).
class DBVersionTest : public ::testing::TestWithParam<IndexKind> {};

INSTANTIATE_TEST_SUITE_P(AllKinds, DBVersionTest,
                         ::testing::Values(IndexKind::kHash, IndexKind::kOrdered), KindName);

TEST_P(DBVersionTest, VersionsNeverRepeatAfterCompactionAndReopen) {
  testing::TempDir dir;
  Options options;
  options.index = GetParam();
  options.background_compaction = false;
  Result<std::unique_ptr<DB>> db = DB::Open(options, dir.path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Put("x", "first").ok());
  Result<DB::VersionedValue> first = (*db)->GetVersioned("x");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE((*db)->Delete("x").ok());
  ASSERT_TRUE((*db)->Compact().ok());  // drops the put and its tombstone
  (*db).reset();                       // closes the DB
  db = DB::Open(options, dir.path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();

  ASSERT_TRUE((*db)->Put("x", "second").ok());
  Result<DB::VersionedValue> second = (*db)->GetVersioned("x");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GT(second->version, first->version) << "a version was handed out twice";
  Status s = (*db)->CompareAndSet("x", first->version, "stale writer");
  EXPECT_TRUE(s.IsAborted()) << "CompareAndSet with a version read before the delete: "
                             << s.ToString();
  Result<std::string> v = (*db)->Get("x");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "second");
}

}  // namespace
}  // namespace varve

// Markdown report: device limits, one table per workload phase (engines as rows, Varve's ratio
// to the best peer and to the device), and the targets, met or missed, with numbers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "bench.h"

namespace varve_bench {
namespace {

bool IsVarve(const std::string& e) { return e.rfind("varve", 0) == 0; }

std::string F(const char* fmt, double v) {
  if (v < 0 || std::isnan(v)) return "–";
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string Ops(double v) {
  if (v <= 0) return "–";
  char b[64];
  if (v >= 1e6)
    std::snprintf(b, sizeof b, "%.2fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(b, sizeof b, "%.1fK", v / 1e3);
  else
    std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

bool TimeMetric(const PhaseResult& r) { return r.ops_per_s <= 0 && r.seconds > 0; }

// The device figure a phase can be set against (0 = none) and its name.
double DeviceLimit(const Device& d, const Args& a, const PhaseResult& r, std::string* name) {
  if (r.workload == "halodb-ltm" && r.phase.find(", 1 thread") != std::string::npos) {
    *name = "fio randread QD1";
    return d.randread_qd1_iops;
  }
  if (r.workload == "halodb-ltm") {
    *name = "fio randread QD32";
    return d.randread_qd32_iops;
  }
  if (r.workload == "sync" && r.phase == "overwrite, durable every write") {
    *name = "fio fdatasync/s";
    return d.fdatasync_per_s;
  }
  if (r.workload == "halodb" && r.phase == "fill random" && d.seqwrite_bytes_per_s > 0) {
    *name = "fio seq write (values/s)";
    return d.seqwrite_bytes_per_s / (a.halodb_key_bytes + a.halodb_value_bytes);
  }
  return 0;
}

struct Best {
  double value = 0;
  std::string engine;
};

// Best peer (non-Varve engine) of a phase: highest ops/s or lowest time.
Best BestPeer(const std::vector<const PhaseResult*>& rows, const std::string& except = "") {
  Best b;
  for (auto* r : rows) {
    if (IsVarve(r->engine) || r->engine == except) continue;
    double v = TimeMetric(*r) ? r->seconds : r->ops_per_s;
    if (v <= 0) continue;
    bool better = TimeMetric(*r) ? (b.value == 0 || v < b.value) : v > b.value;
    if (better) b = {v, r->engine};
  }
  return b;
}

double Ratio(const PhaseResult& r, const Best& b) {
  if (b.value <= 0) return -1;
  if (TimeMetric(r)) return r.seconds > 0 ? b.value / r.seconds : -1;
  return r.ops_per_s / b.value;
}

}  // namespace

std::string Report(const Args& a, const Device& d, const std::vector<PhaseResult>& results,
                   const std::string& header) {
  std::ostringstream o;
  o << header;
  o << "\n### Device (fio, same run, on the benchmark directory's disk)\n\n";
  if (d.randread_qd1_iops > 0 || d.fdatasync_per_s > 0) {
    o << "| pattern | figure |\n|---|---|\n";
    o << "| random read " << d.read_block / 1024 << " KiB, QD1, direct | "
      << Ops(d.randread_qd1_iops) << " IOPS, p50 " << F("%.0f", d.randread_qd1_p50_us)
      << " µs, p99 " << F("%.0f", d.randread_qd1_p99_us) << " µs |\n";
    o << "| random read " << d.read_block / 1024 << " KiB, QD32, direct | "
      << Ops(d.randread_qd32_iops) << " IOPS, p99 " << F("%.0f", d.randread_qd32_p99_us)
      << " µs |\n";
    o << "| 4 KiB write + fdatasync | " << Ops(d.fdatasync_per_s) << "/s, sync p50 "
      << F("%.0f", d.fdatasync_p50_us) << " µs |\n";
    o << "| 1 MiB sequential write, direct, QD8 | " << F("%.0f", d.seqwrite_bytes_per_s / 1e6)
      << " MB/s |\n";
  } else {
    o << "not measured" << (d.note.empty() ? "" : ": " + d.note) << "\n";
  }

  // Settings per engine (first seen).
  std::map<std::string, std::set<std::string>> settings;
  for (auto& r : results)
    if (!r.settings.empty()) settings[r.engine].insert(r.workload + ": " + r.settings);
  o << "\n### Engine settings\n\n";
  for (auto& [e, ss] : settings) {
    o << "- **" << e << "**";
    std::set<std::string> uniq;
    for (auto& s : ss) uniq.insert(s.substr(s.find(": ") + 2));
    if (uniq.size() == 1)
      o << ": " << *uniq.begin() << "\n";
    else {
      o << ":\n";
      for (auto& s : ss) o << "  - " << s << "\n";
    }
  }

  // Tables, in workload order, phases in first-seen order.
  std::vector<std::pair<std::string, std::string>> phases;
  for (auto& r : results) {
    auto key = std::make_pair(r.workload, r.phase);
    if (std::find(phases.begin(), phases.end(), key) == phases.end()) phases.push_back(key);
  }
  std::string last_workload;
  for (auto& [w, p] : phases) {
    if (w != last_workload) {
      o << "\n### Workload `" << w << "`\n";
      last_workload = w;
    }
    std::vector<const PhaseResult*> rows;
    for (auto& r : results)
      if (r.workload == w && r.phase == p) rows.push_back(&r);
    bool time_metric = !rows.empty() && TimeMetric(*rows[0]);
    Best best = BestPeer(rows);
    std::string dev_name;
    double dev = rows.empty() ? 0 : DeviceLimit(d, a, *rows[0], &dev_name);
    o << "\n#### " << w << ": " << p << "\n\n";
    o << "| engine | " << (time_metric ? "seconds" : "ops/s")
      << " | p50 µs | p99 µs | p99.9 µs | WA | space/user B | peak RSS MiB | index B/key "
         "| disk read B/op | varve/best peer | varve/device | note |\n";
    o << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (auto* r : rows) {
      o << "| " << r->engine << " | " << (time_metric ? F("%.3f", r->seconds) : Ops(r->ops_per_s))
        << " | " << (r->p50_us > 0 ? F("%.1f", r->p50_us) : "–") << " | "
        << (r->p99_us > 0 ? F("%.1f", r->p99_us) : "–") << " | "
        << (r->p999_us > 0 ? F("%.1f", r->p999_us) : "–") << " | " << F("%.2f", r->write_amp)
        << " | " << F("%.2f", r->space_amp) << " | " << F("%.0f", r->peak_rss_mb) << " | "
        << (r->index_bytes_per_key == -1 ? "–" : F("%.1f", std::max(0.0, r->index_bytes_per_key)))
        << " | " << F("%.0f", r->read_bytes_per_op) << " | ";
      if (IsVarve(r->engine) && best.value > 0)
        o << F("%.2fx", Ratio(*r, best)) << " (" << best.engine << ")";
      else
        o << "";
      o << " | ";
      if (IsVarve(r->engine) && dev > 0 && !time_metric)
        o << F("%.2fx", r->ops_per_s / dev) << " (" << dev_name << ")";
      std::string cpu = r->cpu_us_per_op > 0 ? F("CPU %.2f µs/op", r->cpu_us_per_op) : "";
      o << " | " << cpu << (!cpu.empty() && !r->note.empty() ? "; " : "") << r->note << " |\n";
    }
  }

  // Targets.
  auto find = [&](const std::string& w, const std::string& p,
                  const std::string& e) -> const PhaseResult* {
    for (auto& r : results)
      if (r.workload == w && r.phase == p && r.engine == e) return &r;
    return nullptr;
  };
  auto rows_of = [&](const std::string& w, const std::string& p) {
    std::vector<const PhaseResult*> rows;
    for (auto& r : results)
      if (r.workload == w && r.phase == p) rows.push_back(&r);
    return rows;
  };
  o << "\n### Targets (Varve = engine `varve`, hash index; ratios from this run)\n\n";
  o << "| target | measured | met |\n|---|---|---|\n";
  auto line = [&](const std::string& t, const std::string& m, bool ok, bool have) {
    o << "| " << t << " | " << (have ? m : "not measured") << " | "
      << (have ? (ok ? "**yes**" : "no") : "–") << " |\n";
  };
  for (const char* w : {"small", "halodb"}) {
    auto* v = find(w, "read random", "varve");
    Best b = BestPeer(rows_of(w, "read random"));
    double r = v && b.value > 0 ? v->ops_per_s / b.value : 0;
    line(std::string(w) + " random reads >= 1.0x best peer (aim 1.5x)",
         F("%.2fx", r) + " of " + b.engine, r >= 1.0, v && b.value > 0);
  }
  for (const char* th : {"read random, 1 thread", "read random, 32 threads"}) {
    std::string ph = th;
    if (ph.find("32") != std::string::npos)
      ph = "read random, " + std::to_string(a.ltm_threads) + " threads";
    for (const char* eng : {"varve", "varve-pread"}) {
      auto* v = find("halodb-ltm", ph, eng);
      if (!v) continue;
      bool qd1 = ph.find(", 1 thread") != std::string::npos;
      double iops = qd1 ? d.randread_qd1_iops : d.randread_qd32_iops;
      double p99 = qd1 ? d.randread_qd1_p99_us : d.randread_qd32_p99_us;
      double r = iops > 0 ? v->ops_per_s / iops : 0;
      double pr = p99 > 0 ? v->p99_us / p99 : 0;
      line(std::string("larger than memory, ") + eng + ", " + ph +
               ": >= 90% of fio IOPS, p99 <= 1.2x fio",
           F("%.2f", r) + " of fio's IOPS, p99 " + F("%.2f", pr) + "x fio's; " +
               F("%.0f", v->read_bytes_per_op) + " disk bytes read per Get",
           r >= 0.9 && pr <= 1.2, iops > 0);
    }
  }
  for (auto [w, p] : {std::pair<const char*, const char*>{"small", "fill random"},
                      {"small", "overwrite random"},
                      {"halodb", "fill random"},
                      {"halodb", "overwrite random"}}) {
    auto* v = find(w, p, "varve");
    auto* rk = find(w, p, "rocksdb");
    Best b = BestPeer(rows_of(w, p));
    bool have = v && rk && b.value > 0;
    double rr = have ? v->ops_per_s / rk->ops_per_s : 0, rb = have ? v->ops_per_s / b.value : 0;
    line(std::string(w) + " " + p + ": >= 2x RocksDB and >= 1.0x best peer",
         F("%.2fx", rr) + " RocksDB, " + F("%.2fx", rb) + " " + b.engine, rr >= 2 && rb >= 1, have);
  }
  for (const char* w : {"small", "halodb"}) {
    auto* v = find(w, "overwrite random", "varve");
    line(std::string(w) + ": write amplification <= 1.5 with 50% overwrites",
         v ? F("%.2f", v->write_amp) : "", v && v->write_amp <= 1.5, v != nullptr);
  }
  {
    auto* v = find("sync", "overwrite, durable every write", "varve");
    double r = v && d.fdatasync_per_s > 0 ? v->ops_per_s / d.fdatasync_per_s : 0;
    line("sync per write >= 90% of fio fdatasync/s",
         F("%.2f", r) + " (" + (v ? Ops(v->ops_per_s) : "") + " vs " + Ops(d.fdatasync_per_s) + ")",
         r >= 0.9, v && d.fdatasync_per_s > 0);
    std::string gp =
        "overwrite, durable every write, " + std::to_string(a.group_threads) + " writer threads";
    auto* g = find("sync", gp, "varve");
    line("group commit, " + std::to_string(a.group_threads) + " threads, >= 100K writes/s",
         g ? Ops(g->ops_per_s) + "/s" : "", g && g->ops_per_s >= 100e3, g != nullptr);
  }
  for (const char* p :
       {"clean reopen, caches dropped", "reopen after kill -9 during writes, caches dropped",
        "clean reopen, warm cache"}) {
    auto* v = find("recovery", p, "varve");
    auto* rk = find("recovery", p, "rocksdb");
    auto* lv = find("recovery", p, "leveldb");
    bool have = v && (rk || lv);
    bool ok = have && (!rk || v->seconds < rk->seconds) && (!lv || v->seconds < lv->seconds);
    line(std::string("recovery (") + p + ", " + std::to_string(a.recovery_keys) +
             " keys): faster than the log-replaying peers (RocksDB, LevelDB)",
         (v ? F("%.3f s", v->seconds) : "") + " vs RocksDB " +
             (rk ? F("%.3f s", rk->seconds) : "–") + ", LevelDB " +
             (lv ? F("%.3f s", lv->seconds) : "–"),
         ok, have);
  }
  for (const char* w : {"small", "halodb"}) {
    auto* v = find(w, "reopen (index memory)", "varve");
    size_t kb = std::string(w) == "small" ? a.small_key_bytes : a.halodb_key_bytes;
    // Judged on anonymous memory, which is all the index uses; the RSS growth also counts the
    // data file pages the one Get maps (a whole page-cache folio: ~20 B/key at 100K keys).
    line(std::string(w) + ": index <= key + 20 B/key (" + std::to_string(kb + 20) + " B)",
         v ? F("%.1f B/key", v->index_anon_bytes_per_key) + " (anonymous memory; " +
                 F("%.1f", v->index_bytes_per_key) + " RSS growth with mapped file pages)"
           : "",
         v && v->index_anon_bytes_per_key >= 0 && v->index_anon_bytes_per_key <= kb + 20,
         v != nullptr);
  }
  return o.str();
}

}  // namespace varve_bench

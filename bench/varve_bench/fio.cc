// Device limits with fio, in the same run: random reads of the value size (rounded up to 4 KiB,
// O_DIRECT) at queue depth 1 and 32, write + fdatasync rate, sequential write bandwidth.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench.h"

namespace varve_bench {
namespace {

std::string RunCapture(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  return out;
}

nlohmann::json Fio(const std::string& args) {
  std::string cmd = "fio --output-format=json " + args + " 2>/dev/null";
  std::string out = RunCapture(cmd);
  size_t brace = out.find('{');
  if (brace == std::string::npos) return {};
  auto j = nlohmann::json::parse(out.substr(brace), nullptr, false);
  if (j.is_discarded() || !j.contains("jobs") || j["jobs"].empty()) return {};
  return j["jobs"][0];
}

double Pct(const nlohmann::json& side, const char* key, const char* pct) {
  if (!side.contains(key) || !side[key].contains("percentile")) return 0;
  auto& p = side[key]["percentile"];
  return p.contains(pct) ? p[pct].get<double>() / 1e3 : 0;
}

}  // namespace

Device RunFio(const Args& a) {
  Device d;
  if (!a.fio) return d;
  if (RunCapture("command -v fio").empty()) {
    d.note = "fio not installed: no device limits";
    return d;
  }
  std::string file = a.dir + "/fio.dat";
  size_t bs = (a.halodb_value_bytes + 4095) / 4096 * 4096;
  d.read_block = bs;
  char common[512];
  std::snprintf(common, sizeof common,
                "--name=dev --filename=%s --size=%lluM --runtime=%g --time_based "
                "--ramp_time=1 --group_reporting",
                file.c_str(), static_cast<unsigned long long>(a.fio_size_mb), a.fio_seconds);
  // Lay the file out first (sequential write, also the bandwidth figure).
  auto w =
      Fio(std::string(common) + " --rw=write --bs=1M --direct=1 --ioengine=libaio --iodepth=8");
  if (!w.is_null()) d.seqwrite_bytes_per_s = w["write"]["bw_bytes"].get<double>();
  auto r1 = Fio(std::string(common) + " --rw=randread --bs=" + std::to_string(bs) +
                " --direct=1 --ioengine=psync --iodepth=1");
  if (!r1.is_null()) {
    d.randread_qd1_iops = r1["read"]["iops"].get<double>();
    d.randread_qd1_p50_us = Pct(r1["read"], "clat_ns", "50.000000");
    d.randread_qd1_p99_us = Pct(r1["read"], "clat_ns", "99.000000");
  }
  auto r32 = Fio(std::string(common) + " --rw=randread --bs=" + std::to_string(bs) +
                 " --direct=1 --ioengine=libaio --iodepth=32");
  if (!r32.is_null()) {
    d.randread_qd32_iops = r32["read"]["iops"].get<double>();
    d.randread_qd32_p99_us = Pct(r32["read"], "clat_ns", "99.000000");
  }
  char sync_args[512];
  std::snprintf(sync_args, sizeof sync_args,
                "--name=sync --filename=%s/fio-sync.dat --size=64M --runtime=%g --time_based "
                "--rw=write --bs=4k --fdatasync=1 --ioengine=psync",
                a.dir.c_str(), a.fio_seconds);
  auto s = Fio(sync_args);
  if (!s.is_null()) {
    d.fdatasync_per_s = s["write"]["iops"].get<double>();
    if (s.contains("sync")) d.fdatasync_p50_us = Pct(s["sync"], "lat_ns", "50.000000");
  }
  std::remove(file.c_str());
  std::remove((a.dir + "/fio-sync.dat").c_str());
  return d;
}

}  // namespace varve_bench

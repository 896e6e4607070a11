#include "util/logging.h"

#include <cstdio>
#include <ctime>
#include <mutex>

namespace varve {
namespace {

std::mutex log_mu;

void Log(const char* level, std::string_view msg) {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::lock_guard lock(log_mu);
  std::fprintf(stderr, "%s %s varve: %.*s\n", when, level, static_cast<int>(msg.size()),
               msg.data());
}

}  // namespace

void LogInfo(std::string_view msg) { Log("I", msg); }
void LogWarning(std::string_view msg) { Log("W", msg); }

}  // namespace varve

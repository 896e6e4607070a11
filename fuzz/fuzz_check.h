// Invariant checks for the fuzz targets: a violation prints what broke and traps, so that
// libFuzzer reports a crash and saves the input as a crash artifact.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace varve::fuzz {

[[noreturn]] inline void FailInvariant(const char* file, int line, const char* what) {
  std::fprintf(stderr, "\n*** invariant violated at %s:%d: %s\n", file, line, what);
  std::fflush(stderr);
  __builtin_trap();
}

inline void PrintHex(const char* label, std::string_view bytes) {
  std::fprintf(stderr, "%s (%zu bytes):", label, bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i % 16 == 0) std::fprintf(stderr, "\n  %04zx:", i);
    std::fprintf(stderr, " %02x", static_cast<unsigned char>(bytes[i]));
  }
  std::fprintf(stderr, "\n");
}

// Known findings that a run may be told to tolerate, so that it can look for others:
// VARVE_FUZZ_TOLERATE is a comma-separated list of their names (fuzz/README.md lists them). A
// tolerated finding is still checked as far as it can be (e.g. a non-canonical record must at
// least re-encode to the same fields).
inline bool Tolerated(std::string_view finding) {
  static const std::string_view list = [] {
    const char* v = std::getenv("VARVE_FUZZ_TOLERATE");
    return std::string_view(v == nullptr ? "" : v);
  }();
  std::string_view rest = list;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    if (rest.substr(0, comma) == finding) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

// The names VARVE_FUZZ_TOLERATE accepts.
// Records and hint entries that decode but do not re-encode to the same bytes: non-minimal
// varints, or the expiry (or user-flags) bit with a zero expiry time (or zero user flags).
constexpr std::string_view kNonCanonical = "noncanonical";

}  // namespace varve::fuzz

#define VARVE_FUZZ_CHECK(cond)                                            \
  do {                                                                    \
    if (!(cond)) ::varve::fuzz::FailInvariant(__FILE__, __LINE__, #cond); \
  } while (0)

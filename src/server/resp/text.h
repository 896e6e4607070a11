// Text helpers shared by the RESP parser and commands: Redis's strict number syntax, case-blind
// comparison, and the float format of INCRBYFLOAT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace varve::server::resp {

// Redis's string2ll: an optional '-' then digits without leading zeros ("0" alone is fine), no
// spaces or '+', in int64 range. "-0", "01", " 1", "1 " and "" are rejected.
bool ParseInt64(std::string_view s, int64_t* value);

// Redis's string2ld: what strtold accepts, with no leading space, nothing left over, not NaN and
// not out of range. "inf" is accepted (callers reject infinite results).
bool ParseLongDouble(std::string_view s, long double* value);

// Redis's human format for INCRBYFLOAT: "%.17Lf" without trailing zeros (and without a bare '.').
std::string FormatLongDouble(long double v);

// ASCII case-insensitive equality; lower must already be lower case.
inline bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

std::string ToLower(std::string_view s);

}  // namespace varve::server::resp

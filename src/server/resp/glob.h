// Redis glob patterns for KEYS, SCAN MATCH and CONFIG GET.
#pragma once

#include <string_view>

namespace varve::server::resp {

// True if text matches pattern: * (any run), ? (any byte), [abc] [^abc] [a-z] (classes; ranges
// may be reversed), and \x (x literally, also inside classes). Byte-wise, case-sensitive. Runs in
// O(|pattern| * |text|) at worst: no exponential backtracking on many stars.
bool GlobMatch(std::string_view pattern, std::string_view text);

// The literal bytes every match must start with ("user:1*" -> "user:1"); empty if the pattern
// starts with a wildcard.
std::string_view GlobLiteralPrefix(std::string_view pattern);

}  // namespace varve::server::resp

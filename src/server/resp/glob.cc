#include "server/resp/glob.h"

#include <utility>

namespace varve::server::resp {
namespace {

// Matches one byte against the single-byte token at pattern[p] (anything but '*'); *next is
// where the following token starts.
bool MatchOne(std::string_view pattern, size_t p, unsigned char c, size_t* next) {
  const size_t n = pattern.size();
  switch (pattern[p]) {
    case '?':
      *next = p + 1;
      return true;
    case '\\':
      if (p + 1 < n) {
        *next = p + 2;
        return static_cast<unsigned char>(pattern[p + 1]) == c;
      }
      *next = p + 1;
      return c == '\\';
    case '[': {
      size_t i = p + 1;
      bool negate = i < n && pattern[i] == '^';
      if (negate) ++i;
      bool matched = false;
      while (i < n && pattern[i] != ']') {
        if (pattern[i] == '\\' && i + 1 < n) {
          matched |= static_cast<unsigned char>(pattern[i + 1]) == c;
          i += 2;
        } else if (i + 2 < n && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
          unsigned char lo = static_cast<unsigned char>(pattern[i]);
          unsigned char hi = static_cast<unsigned char>(pattern[i + 2]);
          if (lo > hi) std::swap(lo, hi);
          matched |= c >= lo && c <= hi;
          i += 3;
        } else {
          matched |= static_cast<unsigned char>(pattern[i]) == c;
          ++i;
        }
      }
      *next = i < n ? i + 1 : n;  // an unclosed class runs to the end of the pattern
      return matched != negate;
    }
    default:
      *next = p + 1;
      return static_cast<unsigned char>(pattern[p]) == c;
  }
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t p = 0, t = 0;
  size_t star_p = kNone, star_t = 0;  // resume points after the last '*'
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;
      star_p = p;
      star_t = t;
      continue;
    }
    size_t next = 0;
    if (p < pattern.size() && MatchOne(pattern, p, static_cast<unsigned char>(text[t]), &next)) {
      p = next;
      ++t;
      continue;
    }
    if (star_p == kNone) return false;
    p = star_p;  // let the last star swallow one more byte
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string_view GlobLiteralPrefix(std::string_view pattern) {
  size_t i = 0;
  while (i < pattern.size() && pattern[i] != '*' && pattern[i] != '?' && pattern[i] != '[' &&
         pattern[i] != '\\') {
    ++i;
  }
  return pattern.substr(0, i);
}

}  // namespace varve::server::resp

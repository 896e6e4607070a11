#include "server/memcache/memcache_parse.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "util/clock.h"

namespace varve::server::memcache {

void Tokenize(std::string_view line, Tokens* tokens) {
  tokens->n = 0;
  tokens->truncated = false;
  const char* p = line.data();
  const char* end = p + line.size();
  while (p < end) {
    while (p < end && *p == ' ') ++p;
    if (p == end) break;
    const char* start = p;
    const void* space = std::memchr(p, ' ', static_cast<size_t>(end - p));
    p = space != nullptr ? static_cast<const char*>(space) : end;
    if (tokens->n == kMaxTokens) {
      tokens->truncated = true;
      return;
    }
    tokens->v[tokens->n++] = std::string_view(start, static_cast<size_t>(p - start));
  }
}

bool TokenCursor::Next(std::string_view* token) {
  size_t start = rest_.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest_ = {};
    return false;
  }
  size_t end = rest_.find(' ', start);
  if (end == std::string_view::npos) end = rest_.size();
  *token = rest_.substr(start, end - start);
  rest_.remove_prefix(end);
  return true;
}

bool ParseU64(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    x = x * 10 + d;
  }
  *v = x;
  return true;
}

bool ParseU32(std::string_view s, uint32_t* v) {
  uint64_t x;
  if (!ParseU64(s, &x) || x > std::numeric_limits<uint32_t>::max()) return false;
  *v = static_cast<uint32_t>(x);
  return true;
}

bool ParseI64(std::string_view s, int64_t* v) {
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  uint64_t x;
  if (!ParseU64(s, &x)) return false;
  if (negative) {
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return false;
    *v = static_cast<int64_t>(0 - x);
  } else {
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *v = static_cast<int64_t>(x);
  }
  return true;
}

bool ParseCounter(std::string_view s, uint64_t* v) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return ParseU64(s, v);
}

bool ValidKey(std::string_view key, size_t max_length) {
  if (key.empty() || key.size() > max_length) return false;
  for (unsigned char c : key) {
    if (c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

namespace {

constexpr char kBase64Chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool Base64Decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
  for (size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    uint32_t group = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = in[i + j];
      int d;
      if (c == '=') {
        if (!last || j < 4 - pad) return false;
        d = 0;
      } else {
        d = Base64Value(c);
        if (d < 0) return false;
      }
      group = (group << 6) | static_cast<uint32_t>(d);
    }
    out->push_back(static_cast<char>(group >> 16));
    if (!last || pad < 2) out->push_back(static_cast<char>((group >> 8) & 0xff));
    if (!last || pad < 1) out->push_back(static_cast<char>(group & 0xff));
  }
  return !out->empty();
}

void Base64Encode(std::string_view in, std::string* out) {
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t g = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out->push_back(kBase64Chars[(g >> 18) & 63]);
    out->push_back(kBase64Chars[(g >> 12) & 63]);
    out->push_back(kBase64Chars[(g >> 6) & 63]);
    out->push_back(kBase64Chars[g & 63]);
  }
  if (i < in.size()) {
    uint32_t g = byte(i) << 16;
    if (i + 1 < in.size()) g |= byte(i + 1) << 8;
    out->push_back(kBase64Chars[(g >> 18) & 63]);
    out->push_back(kBase64Chars[(g >> 12) & 63]);
    out->push_back(i + 1 < in.size() ? kBase64Chars[(g >> 6) & 63] : '=');
    out->push_back('=');
  }
}

Expiry ExpiryFromExptime(int64_t exptime, uint64_t now_unix_ms) {
  Expiry e;
  if (exptime == 0) return e;
  if (exptime < 0) {
    e.expired = true;
    return e;
  }
  uint64_t secs = static_cast<uint64_t>(exptime);
  if (exptime <= kMaxRelativeExptime) {
    e.ttl_ms = secs * 1000;
    return e;
  }
  // Absolute Unix time (bounded so the multiplication cannot overflow).
  uint64_t at_ms = secs > (uint64_t{1} << 50) ? (uint64_t{1} << 60) : secs * 1000;
  if (at_ms <= now_unix_ms) {
    e.expired = true;
  } else {
    e.ttl_ms = at_ms - now_unix_ms;
  }
  return e;
}

Expiry ExpiryNow(int64_t exptime) {
  return ExpiryFromExptime(exptime, exptime > kMaxRelativeExptime ? NowUnixMs() : 0);
}

uint64_t RemainingTtlMs(uint64_t expiry_ms, uint64_t now_unix_ms) {
  if (expiry_ms == 0) return 0;
  return expiry_ms > now_unix_ms ? expiry_ms - now_unix_ms : 1;
}

int64_t RemainingSeconds(uint64_t expiry_ms, uint64_t now_unix_ms) {
  if (expiry_ms == 0) return -1;
  if (expiry_ms <= now_unix_ms) return 0;
  return static_cast<int64_t>((expiry_ms - now_unix_ms + 999) / 1000);
}

void AppendU64(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

void AppendI64(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace varve::server::memcache

// Parsing helpers of the memcached front end: tokenizing command lines without copying, strict
// decimal numbers, key checks, base64 keys (meta "b" flag) and memcached's exptime rules.
// Everything here is pure (no engine, no I/O) so it is tested directly.
// See docs/protocols/memcached.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace varve::server::memcache {

// memcached's KEY_MAX_LENGTH: the longest key of the text and meta protocols.
constexpr size_t kMaxKeyLength = 250;
// A command line (other than get/gets/gat/gats, which may be as long as max_request_bytes for
// large multigets) longer than this is refused and the connection closed.
constexpr size_t kMaxLineBytes = 8192;
// Tokens kept per line; more make storage and meta commands fail (memcached's MAX_TOKENS).
constexpr size_t kMaxTokens = 24;
// A meta command line with this many tokens or more is refused (memcached's
// MFLAG_MAX_OPT_LENGTH counts its terminal token too).
constexpr size_t kMaxMetaTokens = 20;
// Longest meta opaque token, the 'O' included.
constexpr size_t kMaxOpaqueBytes = 32;
// Exptimes up to 30 days are relative seconds; larger ones are absolute Unix times.
constexpr int64_t kMaxRelativeExptime = 60 * 60 * 24 * 30;

// The space-separated tokens of one command line (views into the line).
struct Tokens {
  std::array<std::string_view, kMaxTokens> v;
  size_t n = 0;
  bool truncated = false;  // the line had more than kMaxTokens tokens
};
void Tokenize(std::string_view line, Tokens* tokens);

// Walks the tokens of a line one by one (for multi-key retrieval lines of any length).
class TokenCursor {
 public:
  explicit TokenCursor(std::string_view s) : rest_(s) {}
  // False when no tokens are left.
  bool Next(std::string_view* token);

 private:
  std::string_view rest_;
};

// Strict unsigned decimals: 1..20 digits, no sign, no spaces, no overflow.
bool ParseU64(std::string_view s, uint64_t* v);
bool ParseU32(std::string_view s, uint32_t* v);
// An optional '-' then digits; no overflow.
bool ParseI64(std::string_view s, int64_t* v);
// The value of an item for incr/decr: a decimal with optional surrounding spaces (memcached
// pads shrunk numbers with spaces).
bool ParseCounter(std::string_view s, uint64_t* v);

// A text-protocol key: 1..max_length bytes, no control characters or spaces.
bool ValidKey(std::string_view key, size_t max_length);

// Standard base64 with padding. Decode fails on bad characters, bad padding or empty output.
bool Base64Decode(std::string_view in, std::string* out);
void Base64Encode(std::string_view in, std::string* out);

// An exptime turned into what the engine stores.
struct Expiry {
  bool expired = false;  // negative, or an absolute time already past: store nothing
  uint64_t ttl_ms = 0;   // 0 = never expires
};
// exptime 0: never; 1..30 days: relative seconds; larger: absolute Unix seconds; negative:
// already expired.
Expiry ExpiryFromExptime(int64_t exptime, uint64_t now_unix_ms);
// As ExpiryFromExptime with the current time, read only for absolute exptimes.
Expiry ExpiryNow(int64_t exptime);
// An item's remaining time to live as a PutOptions::ttl_ms (0 = never, else at least 1).
uint64_t RemainingTtlMs(uint64_t expiry_ms, uint64_t now_unix_ms);
// Remaining whole seconds, rounded up, as mg's t flag shows them; -1 = never expires.
int64_t RemainingSeconds(uint64_t expiry_ms, uint64_t now_unix_ms);

void AppendU64(std::string* out, uint64_t v);
void AppendI64(std::string* out, int64_t v);

}  // namespace varve::server::memcache

// RequestParser: the incremental, bounded parser of RESP2 requests — multibulk
// ("*2\r\n$3\r\nGET\r\n $1\r\nk\r\n") and inline ("GET k\r\n", as telnet and redis-cli users type
// them).
//
// Parse() looks at the front of a buffer. When the request there is incomplete it remembers how
// far it got, so the next call — which must pass a buffer starting at the same request, with more
// bytes appended — resumes instead of re-parsing (a 100 MB request arriving in 64 KB pieces costs
// O(size), not O(size^2)). Arguments are views into the buffer (no copy), except inline arguments
// with quotes or escapes, which are unescaped into storage the parser owns.
//
// Limits: a multibulk count or bulk length that would take the request beyond max_request_bytes is
// an error (too_large()), as is an inline line longer than max_inline_bytes. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace varve::server::resp {

class RequestParser {
 public:
  enum class Outcome : uint8_t {
    kComplete,    // args() holds the request; *consumed bytes belong to it
    kEmpty,       // *consumed bytes held no command (blank inline line, "*0\r\n"); skip them
    kIncomplete,  // need more bytes; call again with the same request at the buffer's front
    kError,       // malformed or too large: error() says why; the connection must close
  };

  RequestParser(uint64_t max_request_bytes, uint64_t max_inline_bytes)
      : max_request_bytes_(max_request_bytes), max_inline_bytes_(max_inline_bytes) {}

  Outcome Parse(std::string_view in, size_t* consumed);

  // After kComplete: the arguments, valid until the next Parse call and while the buffer lives.
  const std::vector<std::string_view>& args() const { return args_; }
  // After kError: the message without the "ERR " code, e.g. "Protocol error: invalid bulk length".
  const std::string& error() const { return error_; }
  // After kError: true if the request broke a size limit (rather than the protocol's syntax).
  bool too_large() const { return too_large_; }
  // Forgets a partial request.
  void Reset();

 private:
  enum class Mode : uint8_t { kNone, kMultibulk, kInline };

  Outcome ParseMultibulk(std::string_view in, size_t* consumed);
  Outcome ParseInline(std::string_view in, size_t* consumed);
  Outcome Fail(std::string message, bool too_large);
  // Splits one inline line into args_ like Redis's sdssplitargs; false on unbalanced quotes.
  bool SplitInline(std::string_view line);

  const uint64_t max_request_bytes_;
  const uint64_t max_inline_bytes_;

  Mode mode_ = Mode::kNone;
  // Multibulk progress, as offsets from the request's first byte.
  int64_t count_ = -1;     // arguments announced; -1 until the "*N" line is read
  int64_t bulk_len_ = -1;  // length of the argument being read; -1 until its "$N" line is read
  size_t pos_ = 0;         // first byte not yet parsed
  std::vector<std::pair<size_t, size_t>> spans_;  // (offset, length) of each argument read
  // Inline progress: bytes already searched for '\n'.
  size_t scanned_ = 0;

  std::vector<std::string_view> args_;
  std::vector<std::string> inline_storage_;       // unescaped inline arguments
  std::vector<std::pair<size_t, size_t>> slots_;  // (argument, storage) of unescaped ones
  std::string error_;
  bool too_large_ = false;
};

}  // namespace varve::server::resp

// RESP2 reply encoding: every function appends one complete reply (or an array header) to *out.
// No allocation beyond out's own growth. See docs/protocols/redis.md.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "varve/status.h"

namespace varve::server::resp {

inline void AppendCrlf(std::string* out) { out->append("\r\n", 2); }

inline void AppendNumberLine(std::string* out, char prefix, int64_t n) {
  char buf[24];
  buf[0] = prefix;
  char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out->append(buf, static_cast<size_t>(end - buf));
}

// +text (text must not hold CR or LF).
inline void AppendSimple(std::string* out, std::string_view text) {
  out->push_back('+');
  out->append(text);
  AppendCrlf(out);
}
inline void AppendOk(std::string* out) { out->append("+OK\r\n", 5); }

// -message; message starts with the error code ("ERR syntax error", "NOPROTO ..."). CR and LF in
// it (say, from a client's key) become spaces, so an error is always one line.
inline void AppendError(std::string* out, std::string_view message) {
  out->push_back('-');
  size_t at = out->size();
  out->append(message);
  for (size_t i = at; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
  AppendCrlf(out);
}

inline void AppendInteger(std::string* out, int64_t n) { AppendNumberLine(out, ':', n); }

inline void AppendBulk(std::string* out, std::string_view data) {
  AppendNumberLine(out, '$', static_cast<int64_t>(data.size()));
  out->append(data);
  AppendCrlf(out);
}
inline void AppendNull(std::string* out) { out->append("$-1\r\n", 5); }
inline void AppendArrayHeader(std::string* out, size_t n) {
  AppendNumberLine(out, '*', static_cast<int64_t>(n));
}

// The one place an engine Status becomes a RESP error reply:
// "-ERR corruption: <message>", "-ERR I/O error: <message>", ...
void AppendStatusError(std::string* out, const Status& s);

}  // namespace varve::server::resp

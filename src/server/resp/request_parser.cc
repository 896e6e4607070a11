#include "server/resp/request_parser.h"

#include <algorithm>
#include <cstring>

#include "server/resp/text.h"

namespace varve::server::resp {
namespace {

// The longest "*N\r\n" or "$N\r\n" line we wait for: a sign and 19 digits fit with room to spare.
constexpr size_t kMaxLengthLine = 32;
// Every multibulk argument takes at least this many bytes ("$0\r\n\r\n").
constexpr uint64_t kMinArgBytes = 6;
constexpr int64_t kMaxArgs = 0x7fffffff;  // Redis's INT_MAX

enum class LineResult : uint8_t { kOk, kIncomplete, kBad };

// Reads the number of a "<type><number>\r\n" line whose number starts at in[start].
LineResult ReadLengthLine(std::string_view in, size_t start, int64_t* value, size_t* next) {
  size_t limit = std::min(in.size(), start + kMaxLengthLine);
  if (start >= limit) return LineResult::kIncomplete;
  const void* cr = std::memchr(in.data() + start, '\r', limit - start);
  if (cr == nullptr) {
    return in.size() >= start + kMaxLengthLine ? LineResult::kBad : LineResult::kIncomplete;
  }
  size_t cr_pos = static_cast<size_t>(static_cast<const char*>(cr) - in.data());
  if (cr_pos + 1 >= in.size()) return LineResult::kIncomplete;
  if (in[cr_pos + 1] != '\n') return LineResult::kBad;
  if (!ParseInt64(in.substr(start, cr_pos - start), value)) return LineResult::kBad;
  *next = cr_pos + 2;
  return LineResult::kOk;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void RequestParser::Reset() {
  mode_ = Mode::kNone;
  count_ = -1;
  bulk_len_ = -1;
  pos_ = 0;
  spans_.clear();
  scanned_ = 0;
}

RequestParser::Outcome RequestParser::Fail(std::string message, bool too_large) {
  error_ = std::move(message);
  too_large_ = too_large;
  Reset();
  return Outcome::kError;
}

RequestParser::Outcome RequestParser::Parse(std::string_view in, size_t* consumed) {
  if (mode_ == Mode::kNone) {
    if (in.empty()) return Outcome::kIncomplete;
    mode_ = in[0] == '*' ? Mode::kMultibulk : Mode::kInline;
  }
  return mode_ == Mode::kMultibulk ? ParseMultibulk(in, consumed) : ParseInline(in, consumed);
}

RequestParser::Outcome RequestParser::ParseMultibulk(std::string_view in, size_t* consumed) {
  if (pos_ > in.size()) return Fail("Protocol error: request buffer changed", false);  // misuse
  if (count_ < 0) {
    int64_t n = 0;
    size_t next = 0;
    switch (ReadLengthLine(in, 1, &n, &next)) {
      case LineResult::kIncomplete:
        return Outcome::kIncomplete;
      case LineResult::kBad:
        return Fail("Protocol error: invalid multibulk length", false);
      case LineResult::kOk:
        break;
    }
    if (n <= 0) {  // "*0" and "*-1" carry no command; Redis skips them
      Reset();
      *consumed = next;
      return Outcome::kEmpty;
    }
    if (n > kMaxArgs || static_cast<uint64_t>(n) > max_request_bytes_ / kMinArgBytes) {
      return Fail("Protocol error: invalid multibulk length", true);
    }
    count_ = n;
    pos_ = next;
    spans_.clear();
    spans_.reserve(static_cast<size_t>(std::min<int64_t>(n, 1024)));
  }
  while (spans_.size() < static_cast<size_t>(count_)) {
    if (bulk_len_ < 0) {
      if (pos_ >= in.size()) return Outcome::kIncomplete;
      if (in[pos_] != '$') {
        return Fail(std::string("Protocol error: expected '$', got '") + in[pos_] + "'", false);
      }
      int64_t n = 0;
      size_t next = 0;
      switch (ReadLengthLine(in, pos_ + 1, &n, &next)) {
        case LineResult::kIncomplete:
          return Outcome::kIncomplete;
        case LineResult::kBad:
          return Fail("Protocol error: invalid bulk length", false);
        case LineResult::kOk:
          break;
      }
      if (n < 0) return Fail("Protocol error: invalid bulk length", false);
      if (static_cast<uint64_t>(n) > max_request_bytes_ ||
          next + static_cast<uint64_t>(n) + 2 > max_request_bytes_) {
        return Fail("Protocol error: invalid bulk length", true);
      }
      bulk_len_ = n;
      pos_ = next;
    }
    size_t len = static_cast<size_t>(bulk_len_);
    if (in.size() - pos_ < len + 2) return Outcome::kIncomplete;
    if (in[pos_ + len] != '\r' || in[pos_ + len + 1] != '\n') {
      return Fail("Protocol error: bulk data not followed by CRLF", false);
    }
    spans_.emplace_back(pos_, len);
    pos_ += len + 2;
    bulk_len_ = -1;
  }
  args_.clear();
  for (const auto& [offset, len] : spans_) args_.emplace_back(in.data() + offset, len);
  *consumed = pos_;
  Reset();
  return Outcome::kComplete;
}

RequestParser::Outcome RequestParser::ParseInline(std::string_view in, size_t* consumed) {
  if (scanned_ > in.size()) return Fail("Protocol error: request buffer changed", false);
  const void* nl = std::memchr(in.data() + scanned_, '\n', in.size() - scanned_);
  if (nl == nullptr) {
    if (in.size() > max_inline_bytes_) return Fail("Protocol error: too big inline request", true);
    scanned_ = in.size();
    return Outcome::kIncomplete;
  }
  size_t nl_pos = static_cast<size_t>(static_cast<const char*>(nl) - in.data());
  if (nl_pos > max_inline_bytes_) return Fail("Protocol error: too big inline request", true);
  size_t line_len = nl_pos;
  if (line_len > 0 && in[line_len - 1] == '\r') --line_len;
  if (!SplitInline(in.substr(0, line_len))) {
    return Fail("Protocol error: unbalanced quotes in request", false);
  }
  *consumed = nl_pos + 1;
  Reset();
  return args_.empty() ? Outcome::kEmpty : Outcome::kComplete;
}

// Follows Redis's sdssplitargs: arguments separated by white space; "double quotes" with \n \r \t
// \b \a \\ \" and \xHH escapes; 'single quotes' with \' only; a closing quote must be followed by
// white space or the end; a NUL byte ends the line. Unquoted arguments are views into line.
bool RequestParser::SplitInline(std::string_view line) {
  args_.clear();
  slots_.clear();
  size_t stored = 0;
  auto at = [&](size_t i) -> char { return i < line.size() ? line[i] : '\0'; };
  size_t p = 0;
  while (true) {
    while (at(p) != '\0' && IsSpace(at(p))) ++p;
    if (at(p) == '\0') break;
    size_t start = p, end = p;
    std::string* buf = nullptr;  // set once the argument needs unescaping
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && HexValue(at(p + 2)) >= 0 && HexValue(at(p + 3)) >= 0) {
          buf->push_back(static_cast<char>(HexValue(at(p + 2)) * 16 + HexValue(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          switch (at(p)) {
            case 'n':
              buf->push_back('\n');
              break;
            case 'r':
              buf->push_back('\r');
              break;
            case 't':
              buf->push_back('\t');
              break;
            case 'b':
              buf->push_back('\b');
              break;
            case 'a':
              buf->push_back('\a');
              break;
            default:
              buf->push_back(at(p));
              break;
          }
        } else if (c == '"') {
          if (at(p + 1) != '\0' && !IsSpace(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          buf->push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          buf->push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !IsSpace(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          buf->push_back(c);
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            end = p;
            break;
          case '"':
          case '\'':
            if (buf == nullptr) {
              if (stored == inline_storage_.size()) inline_storage_.emplace_back();
              buf = &inline_storage_[stored++];
              buf->assign(line.substr(start, p - start));
            }
            (c == '"' ? in_double : in_single) = true;
            break;
          default:
            if (buf != nullptr) buf->push_back(c);
            break;
        }
      }
      if (at(p) != '\0') ++p;
    }
    if (buf != nullptr) {
      slots_.emplace_back(args_.size(), stored - 1);
      args_.emplace_back();
    } else {
      args_.push_back(line.substr(start, end - start));
    }
  }
  // Storage strings may have moved while the vector grew: point at them only now.
  for (const auto& [arg, slot] : slots_) args_[arg] = inline_storage_[slot];
  return true;
}

}  // namespace varve::server::resp

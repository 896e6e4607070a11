// Small codecs for the HTTP front end: percent-encoding (RFC 3986) of keys in paths and query
// strings, UTF-8 validation and base64 (RFC 4648) for binary keys and values in JSON, strict
// decimal parsing. No allocation beyond the output strings; nothing throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace varve::server::http {

// Decodes %XX escapes (hex digits of either case). With plus_is_space (query strings, as in
// application/x-www-form-urlencoded) '+' becomes ' '. Returns false on a '%' not followed by two
// hex digits. Every other byte is kept as is, so any key is reachable.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// Encodes every byte outside RFC 3986 unreserved (A-Z a-z 0-9 - . _ ~) as %XX (upper case).
std::string PercentEncode(std::string_view in);

// One name=value pair of a query string, both decoded.
using QueryParam = std::pair<std::string, std::string>;
// Splits "a=1&b=&c" (empty parts are skipped; a name without '=' has an empty value) and decodes
// names and values. On a bad escape returns false with *error naming the parameter.
bool ParseQuery(std::string_view query, std::vector<QueryParam>* params, std::string* error);

// True if s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Standard alphabet with '=' padding.
std::string Base64Encode(std::string_view in);
// Accepts the standard alphabet with or without padding; returns false on anything else.
bool Base64Decode(std::string_view in, std::string* out);

// Strict unsigned decimal: 1 to 20 digits, no sign, no spaces, no overflow.
bool ParseUint64(std::string_view s, uint64_t* out);

// s without leading and trailing spaces and tabs.
std::string_view Trim(std::string_view s);

// Case-insensitive ASCII comparison.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace varve::server::http

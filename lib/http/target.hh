// Request targets (RFC 9112 section 3.2): origin form "/path?query" and absolute form
// "http://host/path?query" split into a percent-decoded path and decoded query arguments,
// the way handlers see them (http::Request::path and ::query).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace strata::http {

struct Target {
    std::string path;                              // decoded, starts with '/'
    std::multimap<std::string, std::string> query; // decoded ('+' is a space in the query)
};

// nullopt for a malformed target: empty, not starting with '/' (after an absolute form's
// authority, where an empty path is "/"), a bad %-escape, or a decoded NUL or other control
// character in the path. A query argument with either is left out of `query` (the raw
// target still has it, for proxies). A "#fragment" is dropped.
std::optional<Target> parse_target(std::string_view raw);

// Percent-decodes s ('+' to space when plus_is_space); nullopt on a bad escape or a decoded
// control character (< 0x20 or 0x7f).
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

} // namespace strata::http

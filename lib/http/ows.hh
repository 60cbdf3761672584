// Optional whitespace (RFC 9110 5.6.3: SP and HTAB) around header values and list items.
// One definition for every parser of header text: the server's head checks, the client's
// response parser, the gateway's and blockd's header readers.
#pragma once

#include <string_view>

namespace strata::http {

constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

} // namespace strata::http

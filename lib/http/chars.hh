// Character classes of HTTP header text (RFC 9110 5.5, 5.6.2), by table: these run for
// every byte of every header on the proxy's path, where strchr/find_first_of per byte
// showed up (and short header texts gain nothing from a vectorized loop).
#pragma once

#include <array>
#include <string_view>

namespace strata::http {

namespace detail {
enum : unsigned char { tchar = 1, line_break = 2, not_in_value = 4 };
constexpr std::array<unsigned char, 256> char_class = [] {
    std::array<unsigned char, 256> t{};
    for (int c = '0'; c <= '9'; ++c)
        t[c] |= tchar;
    for (int c = 'a'; c <= 'z'; ++c)
        t[c] |= tchar;
    for (int c = 'A'; c <= 'Z'; ++c)
        t[c] |= tchar;
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t[static_cast<unsigned char>(c)] |= tchar;
    t['\r'] |= line_break;
    t['\n'] |= line_break;
    t[0] |= line_break;
    for (int c = 0; c < 0x20; ++c)
        if (c != '\t') t[c] |= not_in_value;
    t[0x7f] |= not_in_value;
    return t;
}();
} // namespace detail

constexpr bool is_tchar(unsigned char c) noexcept {
    return detail::char_class[c] & detail::tchar;
}

// A token: a method or a header name.
constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

// No CR, LF or NUL: the text cannot end a header line early or split a message.
constexpr bool no_line_break(std::string_view s) noexcept {
    for (unsigned char c : s)
        if (detail::char_class[c] & detail::line_break) return false;
    return true;
}

// A field value's characters (RFC 9110 5.5): no controls but HTAB, no DEL.
constexpr bool field_value_chars(std::string_view s) noexcept {
    for (unsigned char c : s)
        if (detail::char_class[c] & detail::not_in_value) return false;
    return true;
}

} // namespace strata::http

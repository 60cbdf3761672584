// Small text helpers of the gateway's config and header parsers (ASCII only: HTTP tokens,
// header values, config words).
#pragma once

#include "http/chars.hh"
#include "http/ows.hh"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gatewayd::text {

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Without leading and trailing spaces and tabs.
inline std::string_view trim(std::string_view s) {
    return http::trim_ows(s);
}

// The non-empty, trimmed items of a list separated by `sep`.
inline std::vector<std::string> split(std::string_view v, char sep) {
    std::vector<std::string> out;
    std::size_t s = 0;
    while (s <= v.size()) {
        auto e = v.find(sep, s);
        std::string_view w = trim(v.substr(s, e == v.npos ? v.npos : e - s));
        if (!w.empty()) out.emplace_back(w);
        if (e == v.npos) break;
        s = e + 1;
    }
    return out;
}

// An RFC 9110 token of at most 128 characters: a header name, a method.
inline bool token(std::string_view s) {
    return s.size() <= 128 && http::is_token(s);
}

} // namespace strata::gatewayd::text

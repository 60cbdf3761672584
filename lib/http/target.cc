#include "http/target.hh"

#include <strings.h>

namespace strata::http {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

} // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (s.size() - i < 3) return std::nullopt;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return std::nullopt;
        out += c;
    }
    return out;
}

std::optional<Target> parse_target(std::string_view raw) {
    // A fragment is the client's own business; a '?' inside it starts no query.
    if (auto f = raw.find('#'); f != std::string_view::npos) raw = raw.substr(0, f);
    bool absolute = starts_with_nocase(raw, "http://") || starts_with_nocase(raw, "https://");
    if (absolute) {
        std::size_t authority = raw.find("//") + 2;
        std::size_t slash = raw.find_first_of("/?", authority);
        if (slash == std::string_view::npos) return Target{"/", {}};
        raw.remove_prefix(slash);
    }
    std::string_view path = raw, query;
    if (auto q = raw.find('?'); q != std::string_view::npos) {
        path = raw.substr(0, q);
        query = raw.substr(q + 1);
    }
    // RFC 9112 3.2.2: an absolute form's empty path ("http://host?x") is "/".
    if (absolute && path.empty()) path = "/";
    if (path.empty() || path.front() != '/') return std::nullopt;
    auto decoded = percent_decode(path, false);
    if (!decoded) return std::nullopt;
    Target t{std::move(*decoded), {}};
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq), true);
        auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                                  : percent_decode(pair.substr(eq + 1), true);
        // Left out, not refused: a proxy forwards the query as sent (Request::target), and
        // a handler that needs the argument finds it missing.
        if (!key || !value) continue;
        t.query.emplace(std::move(*key), std::move(*value));
    }
    return t;
}

} // namespace strata::http

#include "http_client/target.hh"

#include "http_client/error.hh"

#include <charconv>
#include <fmt/format.h>
#include <sys/un.h>

namespace strata::http_client {

Target Target::parse(std::string_view spec) {
    Target t;
    t.spec_ = std::string(spec);
    auto bad = [&](std::string_view why) {
        return Error(ErrorKind::invalid_argument,
                     fmt::format("invalid HTTP client target \"{}\": {}", spec, why));
    };
    for (unsigned char c : spec) {
        if (c <= 0x20 || c == 0x7f) throw bad("contains spaces or control characters");
    }
    if (spec.starts_with("unix:") || spec.starts_with("/")) {
        std::string_view path = spec.starts_with("unix:") ? spec.substr(5) : spec;
        if (path.empty()) throw bad("empty socket path");
        if (path.size() >= sizeof(sockaddr_un{}.sun_path)) throw bad("socket path too long");
        t.socket_path_ = std::string(path);
        t.base_ = "http://localhost"; // Host header; the socket decides where it goes
        return t;
    }
    if (spec.starts_with("http://")) {
        std::string_view rest = spec.substr(7);
        std::string_view authority = rest.substr(0, rest.find('/'));
        if (authority.empty()) throw bad("missing host");
        if (authority.find_first_of("@?#") != std::string_view::npos) {
            throw bad("only http://host[:port][/prefix] is supported");
        }
        if (rest.find_first_of("?#") != std::string_view::npos) throw bad("query in target");
        // Drop a trailing slash so url("/x") never yields "//x".
        while (rest.size() > authority.size() && rest.ends_with('/'))
            rest.remove_suffix(1);
        t.base_ = "http://" + std::string(rest);
        t.authority_ = std::string(authority);
        t.prefix_ = std::string(rest.substr(authority.size()));
        std::string_view host = authority, port;
        if (authority.starts_with('[')) {
            auto close = authority.find(']');
            if (close == authority.npos) throw bad("unclosed [ in the host");
            host = authority.substr(1, close - 1);
            std::string_view after = authority.substr(close + 1);
            if (!after.empty() && !after.starts_with(':')) throw bad("junk after ]");
            if (!after.empty()) port = after.substr(1);
        } else if (auto colon = authority.rfind(':'); colon != authority.npos) {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
        }
        if (host.empty()) throw bad("missing host");
        t.host_ = std::string(host);
        t.port_ = 80;
        if (!port.empty()) {
            int n = 0;
            auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
            if (ec != std::errc() || p != port.data() + port.size() || n < 1 || n > 65535)
                throw bad("invalid port");
            t.port_ = n;
        }
        return t;
    }
    throw bad("expected unix:/path/to.sock or http://host:port");
}

} // namespace strata::http_client

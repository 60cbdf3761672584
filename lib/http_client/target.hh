// Where a client sends its requests: a unix socket ("unix:/run/strata/metad.sock", or just an
// absolute path) or a TCP origin ("http://127.0.0.1:8080", optionally with a path prefix).
#pragma once

#include <string>
#include <string_view>

namespace strata::http_client {

class Target {
public:
    // Throws Error(invalid_argument) for anything else (https is not a daemon-to-daemon need).
    static Target parse(std::string_view spec);

    bool is_unix() const { return !socket_path_.empty(); }
    const std::string& socket_path() const { return socket_path_; }
    // Full URL for an origin-form path ("/v1/status").
    std::string url(std::string_view path) const { return base_ + std::string(path); }
    // The target as given, for messages.
    const std::string& spec() const { return spec_; }

private:
    std::string spec_;
    std::string socket_path_; // empty for TCP
    std::string base_;        // "http://localhost" for unix sockets
};

} // namespace strata::http_client

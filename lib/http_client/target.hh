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
    // TCP targets: the authority as given ("127.0.0.1:8080", "[::1]:8080"; the Host header),
    // its host without brackets, its port (80 when absent) and the path prefix ("" or
    // "/prefix") put before every request path. Unix targets: "localhost", "", 0, "".
    const std::string& authority() const { return authority_; }
    const std::string& host() const { return host_; }
    int port() const { return port_; }
    const std::string& path_prefix() const { return prefix_; }

private:
    std::string spec_;
    std::string socket_path_; // empty for TCP
    std::string base_;        // "http://localhost" for unix sockets
    std::string authority_ = "localhost";
    std::string host_;
    int port_ = 0;
    std::string prefix_;
};

} // namespace strata::http_client

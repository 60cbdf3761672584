// Errors of the HTTP client. The kind tells callers *why* a call failed, so stratactl can say
// "daemon is down" (not_found / refused) instead of printing a libcurl message.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace strata::http_client {

enum class ErrorKind {
    invalid_argument,  // bad target, method, path or header (caller bug)
    not_found,         // unix socket file does not exist
    permission_denied, // no access to the unix socket
    refused,           // nothing listening (stale socket file, closed TCP port)
    resolve,           // host name did not resolve
    connect,           // other connect failures (unreachable, ...)
    timeout,           // connect or whole-request timeout expired
    transfer,          // connection broke while sending or receiving
    bad_response,      // not valid HTTP, or Response::json() on a non-JSON body
    too_large,         // response body over Options::max_response_bytes
    cancelled,         // AsyncClient destroyed before the request finished
    internal,          // libcurl/libuv failure (out of memory, ...)
};

std::string_view kind_name(ErrorKind kind);

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

    ErrorKind kind() const noexcept { return kind_; }
    // The peer is not running: its socket file is missing or nothing accepts connections.
    bool daemon_down() const noexcept {
        return kind_ == ErrorKind::not_found || kind_ == ErrorKind::refused;
    }

private:
    ErrorKind kind_;
};

} // namespace strata::http_client

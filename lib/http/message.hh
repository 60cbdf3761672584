// Requests and responses as handlers see them, and the one error shape of every Strata API:
//   {"error":{"code":"not_found","message":"..."}}
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace strata::http {

// Case-insensitive header names, as HTTP wants.
struct CaseLess {
    bool operator()(std::string_view a, std::string_view b) const;
    using is_transparent = void;
};
using Headers = std::multimap<std::string, std::string, CaseLess>;

// Who is on the other end of a unix socket (SO_PEERCRED).
struct PeerCredentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

struct Request {
    std::string method;
    std::string path;                              // decoded path, without the query
    std::multimap<std::string, std::string> query; // decoded query arguments
    std::string version;
    Headers headers;
    std::string body;
    std::map<std::string, std::string> params; // {name} segments of the matched route
    std::optional<PeerCredentials> peer;       // set for unix-socket connections

    std::optional<std::string_view> header(std::string_view name) const;
    // Parses the body as JSON; throws http::Error 400 (bad_json) or 415 when not JSON.
    nlohmann::json json() const;
};

struct Response {
    int status = 200;
    Headers headers;
    std::string body;

    static Response json(int status, const nlohmann::json& value);
    static Response text(int status, std::string body,
                         std::string content_type = "text/plain; charset=utf-8");
    static Response error(int status, std::string_view code, std::string_view message);
};

// Thrown by handlers (or helpers like Request::json) to answer with the error shape.
class Error : public std::runtime_error {
public:
    Error(int status, std::string code, const std::string& message)
        : std::runtime_error(message), status_(status), code_(std::move(code)) {}
    int status() const { return status_; }
    const std::string& code() const { return code_; }
    Response response() const { return Response::error(status_, code_, what()); }

private:
    int status_;
    std::string code_;
};

} // namespace strata::http

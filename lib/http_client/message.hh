// Requests, responses and header lists of the HTTP client.
#pragma once

#include "http_client/error.hh"

#include <chrono>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::http_client {

// Ordered header fields; lookups ignore ASCII case as HTTP requires.
class Headers {
public:
    using Field = std::pair<std::string, std::string>;

    Headers() = default;
    Headers(std::initializer_list<Field> fields) : fields_(fields) {}

    void add(std::string name, std::string value);
    void set(std::string name, std::string value); // replaces every field of that name
    // First field with that name.
    std::optional<std::string_view> get(std::string_view name) const;
    bool contains(std::string_view name) const { return get(name).has_value(); }

    auto begin() const { return fields_.begin(); }
    auto end() const { return fields_.end(); }
    auto begin() { return fields_.begin(); } // values may be moved out of a spent message
    auto end() { return fields_.end(); }
    void reserve(std::size_t fields) { fields_.reserve(fields); }
    std::size_t size() const { return fields_.size(); }
    bool empty() const { return fields_.empty(); }
    void clear() { fields_.clear(); }

private:
    std::vector<Field> fields_;
};

struct Request {
    std::string method = "GET";
    std::string path = "/"; // origin-form: "/v1/status?x=1", appended to the target
    Headers headers;
    std::string body;
    std::optional<std::chrono::milliseconds> timeout; // overrides Options::timeout
    // When set, the response body goes here piece by piece (return false to abort the
    // transfer) instead of into Response::body, and Options::max_response_bytes does not
    // apply: downloads of any size (backups) in bounded memory.
    std::function<bool(std::string_view)> body_sink;
    // When set, the request body is read from here instead of `body` (uploads of any size in
    // bounded memory): fill the buffer, return the bytes written, 0 at the end, or -1 to
    // abort. body_size is sent as Content-Length.
    std::function<long(char* buffer, std::size_t capacity)> body_source;
    std::uint64_t body_size = 0;
};

struct Response {
    int status = 0;
    Headers headers;
    std::string body;

    bool ok() const { return status >= 200 && status < 300; }
    // Parses the body; throws Error(bad_response) if it is not JSON.
    nlohmann::json json() const;
};

// Outcome of a request that did not throw: either a response (any status) or a transport error.
struct Result {
    std::optional<Error> error;
    Response response;

    // The response, or throws the error.
    Response& value() &;
    Response&& value() &&;
};

} // namespace strata::http_client

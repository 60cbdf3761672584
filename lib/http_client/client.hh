// Synchronous HTTP/1.1 client for daemon-to-daemon calls and stratactl, over a unix socket or
// TCP, on libcurl. Thread-safe: concurrent calls each take a pooled easy handle, and every
// handle keeps its keep-alive connection between calls.
//
//   strata::http_client::Client metad("unix:/run/strata/metad.sock");
//   auto r = metad.get("/v1/status");                 // throws Error on transport failure
//   if (r.status == 200) use(r.json());
#pragma once

#include "http_client/error.hh"
#include "http_client/message.hh"
#include "http_client/options.hh"
#include "http_client/target.hh"

#include <memory>
#include <mutex>
#include <vector>

namespace strata::http_client {

class Client {
public:
    using Timeout = std::optional<std::chrono::milliseconds>;

    // target: "unix:/run/strata/metad.sock", "/run/strata/metad.sock" or "http://host:port".
    // Throws Error(invalid_argument) for a malformed target. Does not connect yet.
    explicit Client(std::string_view target, Options options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Any HTTP status is a Response; transport failures throw Error.
    Response request(std::string_view method, std::string_view path, const Headers& headers = {},
                     std::string_view body = {}, Timeout timeout = std::nullopt);
    Response request(Request request);
    // Same, but every failure (including invalid arguments) comes back in Result::error.
    Result try_request(Request request);

    Response get(std::string_view path, Timeout timeout = std::nullopt);
    // Sends `body` serialized, with Content-Type and Accept application/json.
    Response post_json(std::string_view path, const nlohmann::json& body,
                       Timeout timeout = std::nullopt);

    const Target& target() const { return target_; }
    const Options& options() const { return options_; }

private:
    struct HandleDeleter {
        void operator()(void* h) const noexcept;
    };
    using Handle = std::unique_ptr<void, HandleDeleter>;

    Target target_;
    Options options_;
    std::mutex mu_;
    std::vector<Handle> idle_; // easy handles, each with its cached connection
};

} // namespace strata::http_client

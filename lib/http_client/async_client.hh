// Asynchronous HTTP/1.1 client on a libuv loop, so a daemon can call another daemon from its
// event loop without blocking it. libcurl's multi interface drives the transfers; its sockets
// and timer are watched with uv_poll / uv_timer (curl_multi_socket_action). Connections are
// kept alive and shared by all requests of one client, up to Options::max_connections at once.
//
// Not thread-safe: construct, call and destroy it on the loop's thread only.
//
//   AsyncClient metad(loop, "unix:/run/strata/metad.sock");
//   metad.get("/v1/status", [](Result r) { if (!r.error) use(r.response); });
#pragma once

#include "http_client/error.hh"
#include "http_client/message.hh"
#include "http_client/options.hh"
#include "http_client/target.hh"

#include <functional>
#include <uv.h>

namespace strata::http_client {

class AsyncClient {
public:
    // Runs on the loop thread once the request is done. Must not throw.
    using Callback = std::function<void(Result)>;

    // Throws Error(invalid_argument) for a malformed target, Error(internal) if libcurl or
    // libuv fail to initialise.
    AsyncClient(uv_loop_t* loop, std::string_view target, Options options = {});
    // Requests still running end with ErrorKind::cancelled (their callbacks run from here).
    // The libuv handles close asynchronously: run the loop afterwards to release them.
    ~AsyncClient();
    AsyncClient(const AsyncClient&) = delete;
    AsyncClient& operator=(const AsyncClient&) = delete;

    // Starts a request; `done` always runs exactly once, later, from the loop — never from
    // inside this call. Throws Error(invalid_argument) for an invalid method, path or header.
    void request(Request&& request, Callback done);
    // The same, leaving `request` as it was: its headers are not copied (they are
    // serialized here), the rest is (a proxy that may retry keeps its request).
    void request(const Request& request, Callback done);
    void get(std::string_view path, Callback done);
    // Sends `body` serialized, with Content-Type and Accept application/json.
    void post_json(std::string_view path, const nlohmann::json& body, Callback done);

    // Requests started and not finished yet.
    std::size_t pending() const;
    const Target& target() const;

private:
    // movable: the request itself when the caller gave it away (then moved, not copied).
    void enqueue(const Request& request, Request* movable, Callback done);
    struct Impl;
    Impl* impl_; // outlives this object until libuv has closed its handles
};

} // namespace strata::http_client

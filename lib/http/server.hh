// HTTP/1.1 server: libmicrohttpd driven from a libuv loop (MHD's epoll fd is watched by a
// uv_poll, its timeouts by a uv_timer), so handlers run on the daemon's loop thread and need
// no locking. One MHD daemon per listening socket, unix or TCP.
#pragma once

#include "http/router.hh"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <uv.h>
#include <vector>

namespace strata::http {

struct Limits {
    std::size_t max_header_bytes = 16384; // request line + headers; over it: 431
    std::size_t max_body_bytes = 1 << 20; // over it: 413
    unsigned connection_limit = 256;
    unsigned idle_timeout_seconds = 60;
    // Per-connection buffer for request bodies, beyond the header bytes. libmicrohttpd
    // zeroes a connection's whole memory pool before every request, so a daemon with small
    // bodies keeps this small; blockd's ingest reads 256 KiB chunks.
    std::size_t body_buffer_bytes = 256 * 1024;
};

// What an observer learns of each answered request (metrics, access logs).
struct Exchange {
    const Request& request;
    std::string_view route; // the matched route's pattern ("/v1/blocks/{sha256}"); "" if none
    int status;
    std::uint64_t body_bytes;             // response body bytes queued (0 for HEAD, 304, ...)
    double seconds;                       // from request headers to queued response
    std::uint64_t request_body_bytes = 0; // received, also of a request that failed
};
using RequestObserver = std::function<void(const Exchange&)>;

// What the daemon runtime needs of an HTTP server, whichever engine it is.
class ServerBase {
public:
    virtual ~ServerBase() = default;
    // Serves on an already bound and listening socket. The server owns the fd from now on.
    virtual void serve(int listen_fd) = 0;
    // Applied to requests that start after the call (reload).
    virtual void set_max_body_bytes(std::size_t bytes) = 0;
    virtual void set_observer(RequestObserver observer) = 0;
    // Stops accepting, closes connections, releases sockets. Idempotent.
    virtual void stop() = 0;
};

// The general engine: every route kind (streamed uploads, readers, files).
class Server : public ServerBase {
public:
    Server(uv_loop_t* loop, const Router& router, Limits limits);
    ~Server() override;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    void serve(int listen_fd) override;
    // Serves HTTPS on the socket: the handshake presents tls_certificate() (http/tls.hh),
    // with the GnuTLS priority string given (see tls_priorities()).
    void serve_tls(int listen_fd, const std::string& priorities);
    void set_max_body_bytes(std::size_t bytes) override;
    void set_observer(RequestObserver observer) override;
    void stop() override;

    struct Endpoint; // one MHD daemon + its uv handles
private:
    friend struct Endpoint;
    void start(int listen_fd, const std::string* tls_priorities);
    uv_loop_t* loop_;
    const Router& router_;
    Limits limits_;
    RequestObserver observer_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

} // namespace strata::http

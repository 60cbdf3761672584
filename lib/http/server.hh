// HTTP/1.1 server: libmicrohttpd driven from a libuv loop (MHD's epoll fd is watched by a
// uv_poll, its timeouts by a uv_timer), so handlers run on the daemon's loop thread and need
// no locking. One MHD daemon per listening socket, unix or TCP.
#pragma once

#include "http/router.hh"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <uv.h>
#include <vector>

namespace strata::http {

struct Limits {
    std::size_t max_header_bytes = 16384; // request line + headers; over it: 431
    std::size_t max_body_bytes = 1 << 20; // over it: 413
    unsigned connection_limit = 256;
    unsigned idle_timeout_seconds = 60;
};

// Called after every answered request (metrics, access logs).
using RequestObserver = std::function<void(const Request&, int status, double seconds)>;

class Server {
public:
    Server(uv_loop_t* loop, const Router& router, Limits limits);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves on an already bound and listening socket. The server owns the fd from now on.
    void serve(int listen_fd);

    // Applied to requests that start after the call (reload).
    void set_max_body_bytes(std::size_t bytes);
    void set_observer(RequestObserver observer);

    // Stops accepting, closes connections, releases sockets. Idempotent.
    void stop();

    struct Endpoint; // one MHD daemon + its uv handles
private:
    friend struct Endpoint;
    uv_loop_t* loop_;
    const Router& router_;
    Limits limits_;
    RequestObserver observer_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

} // namespace strata::http

// The gateway's entry: every request of the public listener, routed or not, comes through
// here. It makes the request id (request_id.hh), applies [public] allow/deny, hands the
// request to the proxy, else serves /healthz and the static files, and on the way out puts
// X-Request-Id on every answer (the gateway's own refusals too) and writes the access log.
//
// Hot reload: what a config defines (proxy, address filter, web root) is one Generation.
// serve() makes a new one current for the requests that arrive from then on; requests
// already in flight keep theirs alive until they are answered, after which the old
// generation (its pools' kept-alive connections with it) is released from a timer, never
// from inside a callback of its own clients.
#pragma once

#include "access_log.hh"
#include "address_list.hh"
#include "http/router.hh"
#include "http/server.hh"
#include "proxy.hh"

#include <memory>
#include <string>
#include <uv.h>
#include <vector>

namespace strata::gatewayd {

class Front {
public:
    struct Generation {
        std::unique_ptr<Proxy> proxy;
        AddressFilter filter;
        std::string web_root;
    };

    explicit Front(uv_loop_t* loop);
    ~Front(); // calls shutdown()
    Front(const Front&) = delete;
    Front& operator=(const Front&) = delete;

    // Adds /healthz and the catch-all routes (every method the router knows of).
    void install(http::Router& router);
    // From now on new requests go to next; the previous one is retired.
    void serve(std::unique_ptr<Generation> next);
    // nullptr: no access log. Lines of requests in flight go to the new one.
    void set_access_log(std::unique_ptr<AccessLog> log) { log_ = std::move(log); }
    // For the HTTP server's observer: a request answered before any route saw it (a head
    // refused by the server's checks, a method no route takes) goes to the access log too,
    // as the gateway's own answer with a request id of its own.
    void log_unrouted(const http::Exchange& exchange);
    AccessLog* access_log() { return log_.get(); }
    // Generations still serving requests that arrived before the last serve().
    std::size_t retired() const { return retired_.size(); }
    // Drops every generation now (daemon stop): their requests in flight end (cancelled).
    void shutdown();

private:
    void answer(http::Request& request, const http::Reply& reply, bool healthz);
    void drain();

    uv_loop_t* loop_;
    uv_timer_t* timer_ = nullptr; // freed by its close callback
    std::shared_ptr<Generation> current_;
    std::vector<std::shared_ptr<Generation>> retired_;
    std::unique_ptr<AccessLog> log_;
};

} // namespace strata::gatewayd

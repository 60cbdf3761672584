// The content engine: an event-driven HTTP/1.1 server on the daemon's libuv loop, built for
// serving stored bytes fast (blockd's signed links, the gateway's public side): keep-alive
// and pipelining, bodies of several file pieces sent with sendfile(2) straight from the page
// cache, small bodies copied into the same send as the headers, TCP_NODELAY with MSG_MORE
// so headers and body leave together. Request bodies are buffered (up to max_body_bytes);
// streamed uploads belong on the general engine (http::Server), and so do blocking routes
// (Router::add_blocking), which this engine runs inline on the loop.
//
// Async routes (Router::add_async) are answered when their Reply comes, from any thread;
// meanwhile the connection stays registered for reading (no epoll change per request), so a
// client that leaves is noticed and pipelined bytes wait in the buffer. A 101 answer with
// Response::upgrade hands the connection over (upgrade.hh) once its head has gone out; any
// other answer to an upgrade request closes the connection after it. "Expect: 100-continue"
// gets its interim 100 before the body is read.
//
// Limits: max_header_bytes (431), max_body_bytes (413), connection_limit (further
// connections are closed at once), idle_timeout_seconds (an idle keep-alive connection, a
// request head or body still arriving, or a response the client stops reading, for longer
// than this: the connection is closed, so slow clients cannot hold it).
#pragma once

#include "http/server.hh"

#include <chrono>
#include <memory>
#include <unordered_set>

namespace strata::http {

class ContentServer : public ServerBase {
public:
    ContentServer(uv_loop_t* loop, const Router& router, Limits limits);
    ~ContentServer() override;
    ContentServer(const ContentServer&) = delete;
    ContentServer& operator=(const ContentServer&) = delete;

    void serve(int listen_fd) override;
    void set_max_body_bytes(std::size_t bytes) override;
    void set_observer(RequestObserver observer) override;
    void stop() override;

    std::size_t connections() const noexcept { return conns_.size(); }

    struct Conn;
    struct Acceptor;
    struct Inbox;
    struct Handover;

private:
    friend struct Conn;
    friend struct Acceptor;
    friend struct Handover;
    void accept_from(Acceptor& a);
    void sweep();
    void forget(Conn* c);
    void drain_inbox();

    uv_loop_t* loop_;
    const Router& router_;
    Limits limits_;
    RequestObserver observer_;
    std::vector<Acceptor*> acceptors_;          // freed by their uv close callbacks
    std::unordered_set<Conn*> conns_;           // likewise
    std::unordered_set<Handover*> handed_over_; // upgraded connections, revoked by stop()
    uv_timer_t* sweeper_ = nullptr;
    std::shared_ptr<Inbox> inbox_; // async Replies from other threads; made by serve()
};

} // namespace strata::http

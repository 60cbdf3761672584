// AsyncClient speaks HTTP/1.1 itself, on libuv streams: the gateway sends every proxied
// request through it, and libcurl's general machinery (a URL parsed and a request printed
// per transfer, its socket re-armed on every exchange) cost more CPU than the rest of the
// request. Each connection carries one exchange at a time (no pipelining); a finished one
// goes back to the idle list when the response allows it.
#include "http_client/async_client.hh"

#include "http_client/response_parser.hh"
#include "http_client/transfer.hh" // validate()
#include "strata_build_config.h"

#include <deque>
#include <fmt/format.h>
#include <memory>
#include <sys/stat.h>
#include <unordered_set>

namespace strata::http_client {

namespace {

constexpr std::size_t read_buffer_bytes = 64 * 1024;
constexpr std::size_t upload_buffer_bytes = 64 * 1024;

// User callbacks run from libuv's C frames: an exception must not unwind through them.
void invoke(AsyncClient::Callback& done, Result result) noexcept {
    done(std::move(result));
}

bool iequals(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return lower(x) == lower(y); });
}

} // namespace

// Lives on the heap until libuv has closed every handle that points to it, which happens on a
// loop iteration after ~AsyncClient.
struct AsyncClient::Impl {
    // A request from request() to its callback. Shared with a write in progress, whose
    // buffers point into it.
    struct Pending {
        Request request;
        Callback done;
        std::string head;       // the serialized request head
        std::uint64_t deadline; // uv_now() milliseconds; 0: none
        int attempts = 0;
        std::string describe(const Target& t) const {
            return fmt::format("{} {} on {}", request.method, request.path, t.spec());
        }
    };
    using PendingPtr = std::shared_ptr<Pending>;

    struct Conn {
        enum class State { resolving, connecting, idle, busy };
        union Stream {
            uv_tcp_t tcp;
            uv_pipe_t pipe;
        } stream;
        uv_timer_t timer;
        uv_connect_t connect_req;
        uv_getaddrinfo_t resolve_req;
        uv_write_t write_req;
        Impl* impl = nullptr;
        State state = State::connecting;
        PendingPtr p;
        PendingPtr writing; // keeps the buffers of an unfinished write alive
        bool resolving = false, stream_open = false, closing = false;
        int open_handles = 0;
        bool reused = false; // served an exchange before: its peer may have closed it since
        std::uint64_t uploaded = 0;
        detail::ResponseParser parser;
        Response response;
        std::unique_ptr<char[]> read_buffer;
        std::unique_ptr<char[]> upload_buffer;

        uv_stream_t* s() { return reinterpret_cast<uv_stream_t*>(&stream); }
        uv_handle_t* h() { return reinterpret_cast<uv_handle_t*>(&stream); }
    };

    uv_loop_t* loop;
    Target target;
    Options options;
    std::string user_agent;
    uv_timer_t timer; // queued requests' deadlines and deferred failures
    int open_handles = 0;
    bool closing = false;
    std::deque<PendingPtr> queue;                     // waiting for a connection
    std::vector<Conn*> idle;                          // most recently used last
    std::unordered_set<Conn*> conns;                  // every open connection
    std::vector<std::pair<PendingPtr, Error>> failed; // delivered from the timer
    std::vector<Callback> late;                       // request() calls made while closing

    Impl(uv_loop_t* l, Target t, Options o) : loop(l), target(std::move(t)), options(std::move(o)) {
        user_agent =
            options.user_agent.empty() ? std::string("strata/" STRATA_VERSION) : options.user_agent;
    }

    void handle_closed() {
        if (--open_handles == 0 && closing) delete this;
    }

    Error error(const Pending& p, ErrorKind kind, std::string_view what) const {
        return Error(kind, fmt::format("{}: {}", p.describe(target), what));
    }

    std::string serialize_head(const Request& r) const {
        using namespace std::string_view_literals; // no strlen per append
        std::string out;
        out.reserve(256 + r.path.size() + r.headers.size() * 48);
        out += r.method;
        out += ' ';
        out += target.path_prefix();
        out += r.path;
        out += " HTTP/1.1\r\n"sv;
        bool host = false, agent = false;
        for (const auto& [name, value] : r.headers) {
            // Framing is ours to write: a caller's Content-Length or Transfer-Encoding could
            // disagree with the body actually sent.
            if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
                iequals(name, "expect"))
                continue;
            host = host || iequals(name, "host");
            agent = agent || iequals(name, "user-agent");
            out += name;
            out += ": "sv;
            out += value;
            out += "\r\n"sv;
        }
        if (!host) {
            out += "Host: "sv;
            out += target.authority();
            out += "\r\n"sv;
        }
        if (!agent) {
            out += "User-Agent: "sv;
            out += user_agent;
            out += "\r\n"sv;
        }
        const std::string& m = r.method;
        if (r.body_source) {
            out += "Content-Length: " + std::to_string(r.body_size) + "\r\n";
        } else if (!r.body.empty() || m == "POST" || m == "PUT" || m == "PATCH") {
            out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
        }
        out += "\r\n"sv;
        return out;
    }

    // --- the impl timer: queued requests that waited too long, failures to deliver ---

    void arm_timer() {
        if (closing) return;
        if (!failed.empty()) {
            uv_timer_start(&timer, on_timer, 0, 0);
            return;
        }
        std::uint64_t earliest = 0;
        for (const auto& p : queue)
            if (p->deadline && (!earliest || p->deadline < earliest)) earliest = p->deadline;
        if (!earliest) {
            uv_timer_stop(&timer);
            return;
        }
        std::uint64_t now = uv_now(loop);
        uv_timer_start(&timer, on_timer, earliest > now ? earliest - now : 0, 0);
    }

    static void on_timer(uv_timer_t* t) {
        auto* impl = static_cast<Impl*>(t->data);
        std::vector<std::pair<PendingPtr, Error>> done = std::move(impl->failed);
        impl->failed.clear();
        std::uint64_t now = uv_now(impl->loop);
        for (auto it = impl->queue.begin(); it != impl->queue.end();) {
            if ((*it)->deadline && (*it)->deadline <= now) {
                done.emplace_back(*it, impl->timeout_error(**it, false));
                it = impl->queue.erase(it);
            } else {
                ++it;
            }
        }
        impl->arm_timer();
        // Every one is delivered, even if a callback destroys the client: `impl` lives
        // until its handles have closed, later in the loop.
        for (auto& [p, e] : done)
            invoke(p->done, Result{std::move(e), {}});
    }

    Error timeout_error(const Pending& p, bool connecting) const {
        if (connecting)
            return error(
                p, ErrorKind::timeout,
                fmt::format("connect timed out after {} ms", options.connect_timeout.count()));
        return error(p, ErrorKind::timeout,
                     fmt::format("timed out after {} ms",
                                 p.request.timeout.value_or(options.timeout).count()));
    }

    void fail_later(PendingPtr p, Error e) {
        failed.emplace_back(std::move(p), std::move(e));
        arm_timer();
    }

    // --- dispatching ---

    void dispatch() {
        while (!queue.empty() && !closing) {
            Conn* c = nullptr;
            if (!idle.empty()) {
                c = idle.back();
                idle.pop_back();
            } else if (conns.size() < std::max<std::size_t>(1, options.max_connections)) {
                c = open_conn();
                continue; // it took the queue's first request (or failed it, deferred)
            } else {
                break;
            }
            PendingPtr p = std::move(queue.front());
            queue.pop_front();
            start(c, std::move(p));
        }
        arm_timer();
    }

    // A new connection that takes the queue's first request; nullptr if it could not even
    // start (that request then fails, from the timer).
    Conn* open_conn() {
        PendingPtr p = std::move(queue.front());
        queue.pop_front();
        auto c = std::make_unique<Conn>();
        c->impl = this;
        int rc = uv_timer_init(loop, &c->timer);
        if (rc != 0) {
            Error e = error(*p, ErrorKind::internal, uv_strerror(rc));
            fail_later(std::move(p), std::move(e));
            return nullptr;
        }
        c->timer.data = c.get();
        c->open_handles = 1;
        Conn* raw = c.release();
        conns.insert(raw);
        ++open_handles;
        raw->p = std::move(p);
        raw->parser.reset(raw->p->request.method == "HEAD");
        arm_conn_timer(raw, true);
        if (target.is_unix()) {
            rc = uv_pipe_init(loop, &raw->stream.pipe, 0);
            if (rc == 0) {
                raw->stream_open = true;
                ++raw->open_handles;
                raw->h()->data = raw;
                raw->state = Conn::State::connecting;
                raw->connect_req.data = raw;
                uv_pipe_connect(&raw->connect_req, &raw->stream.pipe, target.socket_path().c_str(),
                                on_connect);
            }
        } else {
            sockaddr_storage addr{};
            if (uv_ip4_addr(target.host().c_str(), target.port(),
                            reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
                uv_ip6_addr(target.host().c_str(), target.port(),
                            reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
                rc = connect_tcp(raw, reinterpret_cast<sockaddr*>(&addr));
            } else {
                raw->state = Conn::State::resolving;
                raw->resolve_req.data = raw;
                addrinfo hints{};
                hints.ai_family = AF_UNSPEC;
                hints.ai_socktype = SOCK_STREAM;
                rc = uv_getaddrinfo(loop, &raw->resolve_req, on_resolved, target.host().c_str(),
                                    std::to_string(target.port()).c_str(), &hints);
                if (rc == 0) raw->resolving = true;
            }
        }
        if (rc != 0) {
            PendingPtr failed_p = std::move(raw->p);
            fail_later(failed_p, connect_error(*failed_p, rc));
            close_conn(raw);
            return nullptr;
        }
        return raw;
    }

    int connect_tcp(Conn* c, const sockaddr* addr) {
        int rc = uv_tcp_init(loop, &c->stream.tcp);
        if (rc != 0) return rc;
        c->stream_open = true;
        ++c->open_handles;
        c->h()->data = c;
        uv_tcp_nodelay(&c->stream.tcp, 1); // a request head must not wait for an ACK
        c->state = Conn::State::connecting;
        c->connect_req.data = c;
        return uv_tcp_connect(&c->connect_req, &c->stream.tcp, addr, on_connect);
    }

    static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* c = static_cast<Conn*>(req->data);
        c->resolving = false;
        Impl* impl = c->impl;
        if (c->closing) {
            if (res) uv_freeaddrinfo(res);
            impl->conn_handle_closed(c, nullptr);
            return;
        }
        int rc = status;
        if (rc == 0) rc = impl->connect_tcp(c, res->ai_addr);
        if (res) uv_freeaddrinfo(res);
        if (rc != 0) {
            PendingPtr p = std::move(c->p);
            Error e = status != 0
                          ? impl->error(*p, ErrorKind::resolve,
                                        fmt::format("cannot resolve {}: {}", impl->target.host(),
                                                    uv_strerror(status)))
                          : impl->connect_error(*p, rc);
            impl->close_conn(c);
            impl->dispatch();
            invoke(p->done, Result{std::move(e), {}});
        }
    }

    Error connect_error(const Pending& p, int rc) const {
        switch (rc) {
        case UV_ENOENT:
        case UV_ENOTDIR:
            return error(p, ErrorKind::not_found,
                         target.is_unix()
                             ? fmt::format("socket {} does not exist", target.socket_path())
                             : std::string("not found"));
        case UV_ECONNREFUSED:
            return error(p, ErrorKind::refused, "connection refused");
        case UV_EACCES:
        case UV_EPERM:
            return error(p, ErrorKind::permission_denied, "permission denied");
        case UV_ETIMEDOUT:
            return error(p, ErrorKind::timeout, "connect timed out");
        default:
            return error(p, ErrorKind::connect, uv_strerror(rc));
        }
    }

    static void on_connect(uv_connect_t* req, int status) {
        auto* c = static_cast<Conn*>(req->data);
        Impl* impl = c->impl;
        if (c->closing || status == UV_ECANCELED) return;
        if (status != 0) {
            PendingPtr p = std::move(c->p);
            Error e = impl->connect_error(*p, status);
            impl->close_conn(c);
            impl->dispatch();
            invoke(p->done, Result{std::move(e), {}});
            return;
        }
        int rc = uv_read_start(c->s(), on_alloc, on_read);
        if (rc != 0) {
            PendingPtr p = std::move(c->p);
            impl->close_conn(c);
            impl->dispatch();
            invoke(p->done, Result{impl->error(*p, ErrorKind::internal, uv_strerror(rc)), {}});
            return;
        }
        PendingPtr p = std::move(c->p);
        impl->start(c, std::move(p));
    }

    // (Re)starts the connection's timer for its exchange: the connect timeout while
    // connecting (bounded by the request's deadline), the deadline afterwards.
    void arm_conn_timer(Conn* c, bool connecting) {
        std::uint64_t now = uv_now(loop);
        std::uint64_t wait = 0;
        if (c->p->deadline) wait = c->p->deadline > now ? c->p->deadline - now : 1;
        if (connecting && options.connect_timeout.count() > 0) {
            auto ct = static_cast<std::uint64_t>(options.connect_timeout.count());
            if (!wait || ct < wait) wait = ct;
        }
        if (wait)
            uv_timer_start(&c->timer, on_conn_timer, wait, 0);
        else
            uv_timer_stop(&c->timer);
    }

    static void on_conn_timer(uv_timer_t* t) {
        auto* c = static_cast<Conn*>(t->data);
        Impl* impl = c->impl;
        if (!c->p) return;
        bool connecting = c->state != Conn::State::busy;
        PendingPtr p = std::move(c->p);
        // A connect that outlived its own timeout, not the request's deadline, says so.
        bool connect_timeout = connecting && (!p->deadline || uv_now(impl->loop) < p->deadline);
        Error e = impl->timeout_error(*p, connect_timeout);
        impl->close_conn(c);
        impl->dispatch();
        invoke(p->done, Result{std::move(e), {}});
    }

    // Sends p on a connected connection.
    void start(Conn* c, PendingPtr p) {
        if (p->deadline && p->deadline <= uv_now(loop)) {
            Error e = timeout_error(*p, false);
            fail_later(std::move(p), std::move(e));
            make_idle(c);
            return;
        }
        c->state = Conn::State::busy;
        c->p = std::move(p);
        c->response = Response{};
        c->parser.reset(c->p->request.method == "HEAD");
        c->uploaded = 0;
        ++c->p->attempts;
        uv_ref(c->h());
        arm_conn_timer(c, false);
        Pending& r = *c->p;
        uv_buf_t bufs[2];
        unsigned n = 0;
        bufs[n++] = uv_buf_init(r.head.data(), static_cast<unsigned>(r.head.size()));
        if (!r.request.body_source && !r.request.body.empty())
            bufs[n++] =
                uv_buf_init(r.request.body.data(), static_cast<unsigned>(r.request.body.size()));
        write(c, bufs, n);
    }

    void write(Conn* c, uv_buf_t* bufs, unsigned n) {
        // A whole request that fits the socket buffer (almost every one) is sent at once,
        // without a write request: libuv 1.44 re-arms the socket in epoll (an epoll_ctl per
        // exchange) whenever a write request completes. Streamed uploads go on from
        // on_written, so they always take a write request.
        if (!c->p->request.body_source) {
            int sent = uv_try_write(c->s(), bufs, n);
            if (sent > 0) {
                auto left = static_cast<std::size_t>(sent);
                while (n > 0 && left >= bufs->len) {
                    left -= bufs->len;
                    ++bufs;
                    --n;
                }
                if (n == 0) return;
                bufs->base += left;
                bufs->len -= static_cast<decltype(bufs->len)>(left);
            }
            // EAGAIN or an error: uv_write sends the rest, or reports the error as before.
        }
        c->writing = c->p;
        c->write_req.data = c;
        int rc = uv_write(&c->write_req, c->s(), bufs, n, on_written);
        if (rc != 0) { // from the timer: this may run inside request()
            c->writing.reset();
            PendingPtr p = std::move(c->p);
            Error e = error(*p, ErrorKind::transfer,
                            fmt::format("sending the request: {}", uv_strerror(rc)));
            close_conn(c);
            fail_later(std::move(p), std::move(e));
        }
    }

    static void on_written(uv_write_t* req, int status) {
        auto* c = static_cast<Conn*>(req->data);
        Impl* impl = c->impl;
        PendingPtr was = std::move(c->writing);
        if (c->closing || status == UV_ECANCELED) return;
        if (!c->p || c->p != was) return; // the exchange already ended (an early answer)
        if (status != 0) {
            // The answer may still be readable (a server that answers before the whole body,
            // then closes): reading decides unless nothing will come.
            if (!c->parser.started()) impl->transport_failed(c, status, "sending the request");
            return;
        }
        Pending& r = *c->p;
        if (!r.request.body_source || c->uploaded >= r.request.body_size) return;
        if (!c->upload_buffer) c->upload_buffer = std::make_unique<char[]>(upload_buffer_bytes);
        long got = -1;
        try {
            got = r.request.body_source(c->upload_buffer.get(), upload_buffer_bytes);
        } catch (...) {
            got = -1;
        }
        if (got <= 0 || c->uploaded + static_cast<std::uint64_t>(got) > r.request.body_size) {
            PendingPtr p = std::move(c->p);
            impl->close_conn(c);
            impl->dispatch();
            invoke(p->done, Result{impl->error(*p, ErrorKind::transfer,
                                               got < 0 ? "the body source aborted the upload"
                                                       : "the body source did not give body_size "
                                                         "bytes"),
                                   {}});
            return;
        }
        c->uploaded += static_cast<std::uint64_t>(got);
        uv_buf_t buf = uv_buf_init(c->upload_buffer.get(), static_cast<unsigned>(got));
        impl->write(c, &buf, 1);
    }

    static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
        auto* c = static_cast<Conn*>(h->data);
        if (!c->read_buffer) c->read_buffer = std::make_unique<char[]>(read_buffer_bytes);
        *buf = uv_buf_init(c->read_buffer.get(), read_buffer_bytes);
    }

    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* c = static_cast<Conn*>(s->data);
        Impl* impl = c->impl;
        if (c->closing || nread == 0) return;
        if (c->state != Conn::State::busy || !c->p) {
            // An idle connection's peer closed it (or sent what nobody asked for).
            impl->close_conn(c);
            return;
        }
        if (nread < 0) {
            if (nread == UV_EOF) {
                c->parser.eof();
                if (c->parser.state() == detail::ResponseParser::State::done) {
                    impl->finish(c, false);
                    return;
                }
            }
            impl->transport_failed(c, static_cast<int>(nread), "reading the response");
            return;
        }
        std::string_view data(buf->base, static_cast<std::size_t>(nread));
        Pending& r = *c->p;
        const std::size_t limit = impl->options.max_response_bytes;
        bool too_large = false;
        auto sink = [&](std::string_view piece) {
            if (r.request.body_sink) {
                try {
                    return r.request.body_sink(piece);
                } catch (...) {
                    return false;
                }
            }
            if (limit > 0 && c->response.body.size() + piece.size() > limit) {
                too_large = true;
                return false;
            }
            c->response.body.append(piece);
            return true;
        };
        auto was = c->parser.state();
        std::size_t used = c->parser.feed(data, sink);
        auto state = c->parser.state();
        if (was == detail::ResponseParser::State::head &&
            state != detail::ResponseParser::State::head && limit > 0 && !r.request.body_sink &&
            c->parser.content_length() && *c->parser.content_length() > limit)
            too_large = true;
        if (too_large) {
            impl->fail_exchange(
                c, impl->error(r, ErrorKind::too_large,
                               fmt::format("response body larger than {} bytes", limit)));
            return;
        }
        if (state == detail::ResponseParser::State::error) {
            bool refused =
                !r.request.body_sink ? false : c->parser.error() == "the body was refused";
            impl->fail_exchange(
                c, impl->error(r, refused ? ErrorKind::transfer : ErrorKind::bad_response,
                               refused ? "aborted by the body sink" : c->parser.error()));
            return;
        }
        if (state == detail::ResponseParser::State::done)
            impl->finish(c, used == data.size() && c->parser.keep_alive());
    }

    // The connection broke (rc) during the exchange. A kept-alive connection that broke
    // before any byte of an answer was most likely closed by the peer while idle: the
    // request goes again on another connection, once, when it can be sent again.
    void transport_failed(Conn* c, int rc, std::string_view doing) {
        PendingPtr p = std::move(c->p);
        const bool started = c->parser.started();
        bool replay = c->reused && !started && !p->request.body_source && p->attempts < 2;
        close_conn(c);
        if (replay) {
            queue.push_front(std::move(p));
            dispatch();
            return;
        }
        Error e =
            error(*p, ErrorKind::transfer,
                  rc == UV_EOF ? std::string(started ? "connection closed before the response "
                                                       "was complete"
                                                     : "connection closed without a response")
                               : fmt::format("{}: {}", doing, uv_strerror(rc)));
        dispatch();
        invoke(p->done, Result{std::move(e), {}});
    }

    void fail_exchange(Conn* c, Error e) {
        PendingPtr p = std::move(c->p);
        close_conn(c);
        dispatch();
        invoke(p->done, Result{std::move(e), {}});
    }

    void finish(Conn* c, bool keep) {
        PendingPtr p = std::move(c->p);
        Result result;
        result.response = std::move(c->response);
        result.response.status = c->parser.status();
        result.response.headers = std::move(c->parser.headers());
        // A write still going (an answer before the whole body was sent) ends the connection.
        if (keep && !c->writing && !closing) {
            c->reused = true;
            make_idle(c);
        } else {
            close_conn(c);
        }
        dispatch();
        invoke(p->done, std::move(result));
    }

    void make_idle(Conn* c) {
        c->state = Conn::State::idle;
        uv_timer_stop(&c->timer);
        uv_unref(c->h()); // idle clients do not keep uv_run() alive
        idle.push_back(c);
    }

    // --- closing ---

    void close_conn(Conn* c) {
        if (c->closing) return;
        c->closing = true;
        conns.erase(c);
        std::erase(idle, c);
        uv_timer_stop(&c->timer);
        uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_conn_closed);
        if (c->stream_open) uv_close(c->h(), on_conn_closed);
        if (c->resolving) {
            ++c->open_handles; // the resolver's callback still comes
            uv_cancel(reinterpret_cast<uv_req_t*>(&c->resolve_req));
        }
    }

    static void on_conn_closed(uv_handle_t* h) {
        auto* c = static_cast<Conn*>(h->data);
        c->impl->conn_handle_closed(c, h);
    }

    void conn_handle_closed(Conn* c, uv_handle_t*) {
        if (--c->open_handles > 0) return;
        delete c;
        handle_closed();
    }
};

AsyncClient::AsyncClient(uv_loop_t* loop, std::string_view target, Options options) {
    if (!loop) throw Error(ErrorKind::invalid_argument, "AsyncClient needs a uv loop");
    auto impl = std::make_unique<Impl>(loop, Target::parse(target), std::move(options));
    if (int rc = uv_timer_init(loop, &impl->timer); rc != 0)
        throw Error(ErrorKind::internal, fmt::format("uv_timer_init: {}", uv_strerror(rc)));
    impl->timer.data = impl.get();
    impl->open_handles = 1;
    impl_ = impl.release();
}

AsyncClient::~AsyncClient() {
    Impl* impl = impl_;
    impl->closing = true;
    std::vector<std::pair<Impl::PendingPtr, std::string>> cancelled;
    for (auto& [p, e] : impl->failed)
        cancelled.emplace_back(std::move(p), p->describe(impl->target));
    impl->failed.clear();
    for (Impl::Conn* c : std::vector<Impl::Conn*>(impl->conns.begin(), impl->conns.end())) {
        if (c->p) cancelled.emplace_back(std::move(c->p), "");
        impl->close_conn(c);
    }
    for (auto& p : impl->queue)
        cancelled.emplace_back(std::move(p), "");
    impl->queue.clear();
    uv_timer_stop(&impl->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&impl->timer),
             [](uv_handle_t* h) { static_cast<Impl*>(h->data)->handle_closed(); });
    // From here on `impl` only waits for its close callbacks; callbacks below may still call
    // request(), which lands in impl->late.
    for (auto& [p, what] : cancelled) {
        std::string where = what.empty() ? p->describe(impl->target) : what;
        invoke(p->done,
               Result{Error(ErrorKind::cancelled, where + ": cancelled, client closed"), {}});
    }
    while (!impl->late.empty()) {
        Callback done = std::move(impl->late.back());
        impl->late.pop_back();
        invoke(done, Result{Error(ErrorKind::cancelled, "request on a closed client"), {}});
    }
}

void AsyncClient::request(Request&& request, Callback done) {
    enqueue(request, &request, std::move(done));
}

void AsyncClient::request(const Request& request, Callback done) {
    enqueue(request, nullptr, std::move(done));
}

void AsyncClient::enqueue(const Request& request, Request* movable, Callback done) {
    detail::validate(request);
    Impl* impl = impl_;
    if (impl->closing) {
        impl->late.push_back(std::move(done));
        return;
    }
    auto p = std::make_shared<Impl::Pending>();
    uv_update_time(impl->loop); // request() may run long after the loop last woke
    p->head = impl->serialize_head(request);
    auto timeout = request.timeout.value_or(impl->options.timeout);
    p->deadline =
        timeout.count() > 0 ? uv_now(impl->loop) + static_cast<std::uint64_t>(timeout.count()) : 0;
    if (movable) {
        p->request = std::move(*movable);
    } else { // all but the headers, which live on in p->head
        p->request.method = request.method;
        p->request.path = request.path;
        p->request.body = request.body;
        p->request.timeout = request.timeout;
        p->request.body_sink = request.body_sink;
        p->request.body_source = request.body_source;
        p->request.body_size = request.body_size;
    }
    p->done = std::move(done);
    impl->queue.push_back(std::move(p));
    impl->dispatch();
}

void AsyncClient::get(std::string_view path, Callback done) {
    request(Request{"GET", std::string(path), {}, {}, std::nullopt}, std::move(done));
}

void AsyncClient::post_json(std::string_view path, const nlohmann::json& body, Callback done) {
    request(Request{"POST",
                    std::string(path),
                    {{"Content-Type", "application/json"}, {"Accept", "application/json"}},
                    body.dump(),
                    std::nullopt},
            std::move(done));
}

std::size_t AsyncClient::pending() const {
    std::size_t n = impl_->queue.size() + impl_->failed.size();
    for (auto* c : impl_->conns)
        if (c->p) ++n;
    return n;
}

const Target& AsyncClient::target() const {
    return impl_->target;
}

} // namespace strata::http_client

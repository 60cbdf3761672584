#include "websocket_proxy.hh"

#include "http_client/error.hh"
#include "http_client/response_parser.hh"
#include "http_client/target.hh"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <string_view>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace strata::gatewayd {

namespace {

constexpr std::size_t kChunk = 64 * 1024;     // one recv
constexpr std::size_t kBuffered = 256 * 1024; // per direction; past it that side is not read
constexpr std::size_t kMaxBody = 1024 * 1024; // of a relayed non-101 answer

// Whether the comma-separated header value holds `token` (any case, spaces ignored).
bool has_token(std::string_view value, std::string_view token) {
    std::size_t s = 0;
    while (s <= value.size()) {
        auto comma = value.find(',', s);
        std::string_view t = value.substr(s, comma == value.npos ? value.npos : comma - s);
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
            t.remove_prefix(1);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
            t.remove_suffix(1);
        if (t.size() == token.size() && strncasecmp(t.data(), token.data(), t.size()) == 0)
            return true;
        if (comma == value.npos) break;
        s = comma + 1;
    }
    return false;
}

bool again(int e) {
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

} // namespace

bool is_websocket_upgrade(const http::Request& r) {
    bool connection = false, upgrade = false;
    for (const auto& [k, v] : r.headers) {
        if (strcasecmp(k.c_str(), "connection") == 0 && has_token(v, "upgrade")) connection = true;
        if (strcasecmp(k.c_str(), "upgrade") == 0 && has_token(v, "websocket")) upgrade = true;
    }
    return connection && upgrade;
}

void check_websocket_handshake(const http::Request& r) {
    auto bad = [](const std::string& why) {
        throw http::Error(400, "bad_websocket_handshake", why);
    };
    if (r.method != "GET") bad("a WebSocket handshake is a GET, not " + r.method);
    if (r.version != "HTTP/1.1") bad("a WebSocket handshake needs HTTP/1.1");
    auto key = r.header("Sec-WebSocket-Key");
    if (!key || key->empty()) bad("a WebSocket handshake needs Sec-WebSocket-Key");
    if (!r.body.empty()) bad("a WebSocket handshake has no body");
}

WebSocketMetrics::WebSocketMetrics(metrics::Registry& registry)
    : active(&registry.gauge("strata_gateway_websocket_connections",
                             "WebSocket connections open through the gateway now")),
      total(&registry.counter("strata_gateway_websocket_connections_total",
                              "WebSocket connections upgraded through the gateway")) {}

// One connection: connect, send the handshake, read the answer, wait for the client's
// socket, splice. Its uv handles point at it; it frees itself (self_) once they are closed.
struct WebSocketHub::Link : std::enable_shared_from_this<Link> {
    enum class Phase { connecting, writing, reading, waiting, tunnel, closed };

    WebSocketHub* hub;
    uv_loop_t* loop;
    Phase phase = Phase::connecting;
    Done done;
    std::string head; // the request, then what is still to write of it
    http_client::detail::ResponseParser parser;
    std::string body;
    int up_fd = -1;
    uv_poll_t up_poll{};
    bool up_poll_open = false;
    uv_poll_t client_poll{};
    bool client_poll_open = false;
    uv_timer_t timer{};
    uv_getaddrinfo_t resolve{};
    bool resolving = false;
    int handles = 0;             // open uv handles (and a lookup in flight)
    std::shared_ptr<Link> self_; // kept while handles are open
    std::unique_ptr<http::Upgraded> client;
    std::string to_client, to_up;
    bool up_eof = false, client_eof = false;
    bool counted = false; // in the active gauge

    Link(WebSocketHub* h) : hub(h), loop(h->loop_) {}

    static Link* of(uv_handle_t* h) { return static_cast<Link*>(h->data); }

    void start(const http_client::Target& target, std::chrono::milliseconds timeout) {
        uv_timer_init(loop, &timer);
        timer.data = this;
        ++handles;
        uv_timer_start(
            &timer, [](uv_timer_t* t) { of(reinterpret_cast<uv_handle_t*>(t))->on_timer(); },
            static_cast<std::uint64_t>(timeout.count()), 0);
        if (target.is_unix()) {
            sockaddr_un sa{};
            sa.sun_family = AF_UNIX;
            if (target.socket_path().size() >= sizeof sa.sun_path)
                return fail(WebSocketOutcome::Kind::no_connection, "socket path too long");
            std::memcpy(sa.sun_path, target.socket_path().data(), target.socket_path().size());
            return connect_to(reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        }
        sockaddr_storage ss{};
        const std::string& host = target.host();
        if (uv_ip4_addr(host.c_str(), target.port(), reinterpret_cast<sockaddr_in*>(&ss)) == 0)
            return connect_to(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in));
        if (uv_ip6_addr(host.c_str(), target.port(), reinterpret_cast<sockaddr_in6*>(&ss)) == 0)
            return connect_to(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in6));
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        resolve.data = this;
        int rc = uv_getaddrinfo(loop, &resolve, on_resolved, host.c_str(),
                                std::to_string(target.port()).c_str(), &hints);
        if (rc != 0) return fail(WebSocketOutcome::Kind::no_connection, uv_strerror(rc));
        resolving = true;
        ++handles;
    }

    static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* self = static_cast<Link*>(req->data);
        self->resolving = false;
        if (self->phase != Phase::closed) {
            if (status != 0 || !res)
                self->fail(WebSocketOutcome::Kind::no_connection,
                           std::string("cannot resolve: ") + uv_strerror(status));
            else
                self->connect_to(res->ai_addr, res->ai_addrlen);
        }
        if (res) uv_freeaddrinfo(res);
        self->handle_closed();
    }

    void connect_to(const sockaddr* sa, socklen_t len) {
        up_fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (up_fd < 0) return fail(WebSocketOutcome::Kind::no_connection, std::strerror(errno));
        if (::connect(up_fd, sa, len) != 0 && errno != EINPROGRESS)
            return fail(WebSocketOutcome::Kind::no_connection,
                        std::string("cannot connect: ") + std::strerror(errno));
        uv_poll_init(loop, &up_poll, up_fd);
        up_poll.data = this;
        up_poll_open = true;
        ++handles;
        uv_poll_start(&up_poll, UV_WRITABLE, on_up);
    }

    static void on_up(uv_poll_t* p, int status, int events) {
        Link* self = of(reinterpret_cast<uv_handle_t*>(p));
        auto keep = self->shared_from_this();
        if (status < 0) return self->broken(uv_strerror(status));
        switch (self->phase) {
        case Phase::connecting:
            self->connected();
            break;
        case Phase::writing:
            self->write_head();
            break;
        case Phase::reading:
            self->read_answer();
            break;
        case Phase::tunnel:
            self->pump(events, true);
            break;
        default:
            break;
        }
    }

    void connected() {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(up_fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0)
            return fail(WebSocketOutcome::Kind::no_connection,
                        std::string("cannot connect: ") + std::strerror(err));
        phase = Phase::writing;
        write_head();
    }

    void write_head() {
        while (!head.empty()) {
            ssize_t n = ::send(up_fd, head.data(), head.size(), MSG_NOSIGNAL);
            if (n < 0 && again(errno)) return; // UV_WRITABLE brings us back
            if (n <= 0) return broken(std::string("cannot send: ") + std::strerror(errno));
            head.erase(0, static_cast<std::size_t>(n));
        }
        phase = Phase::reading;
        parser.reset(false);
        uv_poll_start(&up_poll, UV_READABLE, on_up);
    }

    void read_answer() {
        char buf[16384];
        ssize_t n = ::recv(up_fd, buf, sizeof buf, 0);
        if (n < 0 && again(errno)) return;
        if (n < 0) return broken(std::string("cannot read: ") + std::strerror(errno));
        auto sink = [this](std::string_view b) {
            if (body.size() + b.size() > kMaxBody) return false;
            body.append(b);
            return true;
        };
        std::size_t used = 0;
        if (n == 0)
            parser.eof();
        else
            used = parser.feed(std::string_view(buf, static_cast<std::size_t>(n)), sink);
        using S = http_client::detail::ResponseParser::State;
        if (parser.state() == S::error)
            return broken("the member's answer is not HTTP: " + parser.error());
        if (parser.state() != S::done) {
            if (n == 0) broken("the member closed the connection before answering");
            return;
        }
        WebSocketOutcome o;
        o.status = parser.status();
        o.headers = std::move(parser.headers());
        if (o.status != 101) {
            o.kind = WebSocketOutcome::Kind::answered;
            o.body = std::move(body);
            finish(std::move(o));
            return close();
        }
        auto up = o.headers.get("Upgrade");
        if (!up || !has_token(*up, "websocket"))
            return broken("the member answered 101 without Upgrade: websocket");
        // Frames the member sent right after its 101 go to the client first.
        to_client.assign(buf + used, static_cast<std::size_t>(n) - used);
        phase = Phase::waiting;
        uv_poll_stop(&up_poll);
        uv_timer_stop(&timer); // the server's own timeout covers sending the 101
        o.kind = WebSocketOutcome::Kind::upgraded;
        o.upgrade = handler();
        finish(std::move(o));
    }

    // Given with the 101: takes the client's connection, or closes the link if destroyed
    // unused (the client left before its 101 went out).
    http::UpgradeHandler handler() {
        struct Ticket {
            std::weak_ptr<Link> link;
            bool used = false;
            ~Ticket() {
                if (auto l = link.lock(); l && !used) l->close();
            }
        };
        auto t = std::make_shared<Ticket>();
        t->link = weak_from_this();
        return [t](std::unique_ptr<http::Upgraded> u) {
            t->used = true;
            if (auto l = t->link.lock()) l->start_tunnel(std::move(u));
        };
    }

    void start_tunnel(std::unique_ptr<http::Upgraded> u) {
        if (phase != Phase::waiting) return; // closed meanwhile: u closes the client
        client = std::move(u);
        to_up = client->take_early_bytes();
        client->on_revoked([this] { close(); });
        uv_poll_init(loop, &client_poll, client->fd());
        client_poll.data = this;
        client_poll_open = true;
        ++handles;
        phase = Phase::tunnel;
        counted = true;
        if (hub && hub->metrics_) {
            hub->metrics_->active->inc();
            hub->metrics_->total->inc();
        }
        auto idle = static_cast<std::uint64_t>(hub->limits_.idle_timeout.count()) * 1000;
        uv_timer_start(
            &timer, [](uv_timer_t* t) { of(reinterpret_cast<uv_handle_t*>(t))->on_timer(); }, idle,
            idle);
        update();
    }

    static void on_client(uv_poll_t* p, int status, int events) {
        Link* self = of(reinterpret_cast<uv_handle_t*>(p));
        auto keep = self->shared_from_this();
        if (status < 0) return self->close();
        self->pump(events, false);
    }

    // Moves bytes: reads the side that is readable into the other's buffer, writes what the
    // writable side has waiting, then closes or re-arms.
    void pump(int events, bool upstream) {
        int fd = upstream ? up_fd : client->fd();
        std::string& in = upstream ? to_client : to_up;  // what this side sends us
        std::string& out = upstream ? to_up : to_client; // what we send this side
        bool& eof = upstream ? up_eof : client_eof;
        bool moved = false;
        if ((events & (UV_READABLE | UV_DISCONNECT)) && !eof && in.size() < kBuffered) {
            char buf[kChunk];
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                in.append(buf, static_cast<std::size_t>(n));
                moved = true;
            } else if (n == 0 || !again(errno)) {
                eof = true;
            }
        }
        if (!out.empty() && !flush(fd, out)) return close();
        // Pass on at once what just came in, without waiting for another turn of the loop.
        if (!in.empty() && !flush(upstream ? client->fd() : up_fd, in)) return close();
        if (moved) uv_timer_again(&timer);
        if ((up_eof && to_client.empty()) || (client_eof && to_up.empty())) return close();
        update();
    }

    // Sends what it can of buf; false when the socket failed.
    bool flush(int fd, std::string& buf) {
        while (!buf.empty()) {
            ssize_t n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && again(errno)) return true;
            if (n <= 0) return false;
            buf.erase(0, static_cast<std::size_t>(n));
            uv_timer_again(&timer);
        }
        return true;
    }

    void update() {
        int up = (!up_eof && to_client.size() < kBuffered ? UV_READABLE : 0) |
                 (!to_up.empty() ? UV_WRITABLE : 0);
        int cl = (!client_eof && to_up.size() < kBuffered ? UV_READABLE : 0) |
                 (!to_client.empty() ? UV_WRITABLE : 0);
        if (up)
            uv_poll_start(&up_poll, up, on_up);
        else
            uv_poll_stop(&up_poll);
        if (cl)
            uv_poll_start(&client_poll, cl, on_client);
        else
            uv_poll_stop(&client_poll);
    }

    void on_timer() {
        auto keep = shared_from_this();
        if (phase == Phase::tunnel) return close(); // idle
        fail(WebSocketOutcome::Kind::timeout, "the member did not answer the handshake in time");
    }

    void broken(const std::string& why) {
        if (phase == Phase::tunnel || phase == Phase::waiting) return close();
        fail(WebSocketOutcome::Kind::failed, why);
    }

    void fail(WebSocketOutcome::Kind kind, std::string why) {
        WebSocketOutcome o;
        o.kind = kind;
        o.message = std::move(why);
        close(); // first: the slot is free for a retry on another member
        finish(std::move(o));
    }

    void finish(WebSocketOutcome o) {
        Done d = std::move(done);
        done = nullptr;
        if (d) d(std::move(o));
    }

    static void on_handle_closed(uv_handle_t* h) { of(h)->handle_closed(); }
    void handle_closed() {
        if (--handles == 0) self_.reset(); // may delete this
    }

    // Closes both sides; idempotent. `done`, if still pending, is left to the caller.
    void close() {
        if (phase == Phase::closed) return;
        phase = Phase::closed;
        auto keep = shared_from_this();
        if (counted && hub && hub->metrics_) hub->metrics_->active->dec();
        counted = false;
        if (up_poll_open) uv_close(reinterpret_cast<uv_handle_t*>(&up_poll), on_handle_closed);
        if (client_poll_open)
            uv_close(reinterpret_cast<uv_handle_t*>(&client_poll), on_handle_closed);
        up_poll_open = client_poll_open = false;
        if (up_fd >= 0) ::close(up_fd); // after uv_close: libuv no longer watches it
        up_fd = -1;
        client.reset(); // the server closes the client's socket
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer)))
            uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_handle_closed);
        if (resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve)); // on_resolved follows
        if (hub) hub->links_.erase(this);
        hub = nullptr;
    }
};

WebSocketHub::WebSocketHub(uv_loop_t* loop, const WebSocketMetrics* metrics, WebSocketLimits limits)
    : loop_(loop), metrics_(metrics), limits_(limits) {}

WebSocketHub::~WebSocketHub() {
    while (!links_.empty()) {
        auto link = links_.begin()->second;
        link->done = nullptr; // its caller may be gone already
        link->close();
    }
}

bool WebSocketHub::open(const std::string& target, const std::string& path,
                        const http_client::Headers& headers, std::chrono::milliseconds timeout,
                        Done done) {
    if (links_.size() >= limits_.max_connections) return false;
    http_client::Target t = http_client::Target::parse(target);
    auto link = std::make_shared<Link>(this);
    link->done = std::move(done);
    std::string& h = link->head;
    h = "GET " + t.path_prefix() + path + " HTTP/1.1\r\nHost: " + t.authority() + "\r\n";
    for (const auto& [k, v] : headers)
        h += k + ": " + v + "\r\n";
    h += "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    link->self_ = link;
    links_.emplace(link.get(), link);
    link->start(t, timeout);
    return true;
}

} // namespace strata::gatewayd

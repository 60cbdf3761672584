#include "http/content_server.hh"

#include "http/chars.hh"
#include "http/request_reader.hh"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <microhttpd.h> // MHD_get_reason_phrase_for only
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>

namespace strata::http {

namespace {

using Clock = std::chrono::steady_clock;

// Bodies up to this size are copied into the header's send (one syscall, no sendfile).
constexpr std::size_t kInlineBody = 64 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kAcceptBurst = 64;

// "Date:" value, formatted once per second.
const std::string& http_date_now() {
    static thread_local std::time_t cached_at = 0;
    static thread_local std::string cached;
    std::time_t now = std::time(nullptr);
    if (now != cached_at) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        char buf[64];
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = buf;
        cached_at = now;
    }
    return cached;
}

bool bodyless_status(int status) {
    return status < 200 || status == 204 || status == 304;
}

const char* error_code(int status) {
    switch (status) {
    case 413:
        return "payload_too_large";
    case 431:
        return "headers_too_large";
    case 501:
        return "not_implemented";
    case 505:
        return "http_version_not_supported";
    default:
        return "bad_request";
    }
}

bool header_is_safe(std::string_view s) {
    return no_line_break(s);
}

// Fields that frame the message: the server writes them itself, so a handler's copy (a wrong
// Content-Length, above all) can never desynchronize a keep-alive connection.
bool framing_header(std::string_view name) {
    for (std::string_view f : {"Content-Length", "Transfer-Encoding", "Connection"})
        if (name.size() == f.size() && strncasecmp(name.data(), f.data(), f.size()) == 0)
            return true;
    return false;
}

// A client's address in text ("192.0.2.1", "::ffff:192.0.2.1"); "" for other families.
std::string address_text(const sockaddr_storage& ss) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, text, sizeof text);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, text,
                  sizeof text);
    return text;
}

std::optional<PeerCredentials> unix_peer(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
    return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

// What an async Reply holds of its connection: cleared when the connection goes, so a late
// answer finds nobody to send to. Read and written on the loop thread only.
struct ConnRef {
    ContentServer::Conn* conn;
};

} // namespace

// Where async Replies made off the loop's thread wait for it. Shared with the Replies: once
// the server stops, late ones are dropped.
struct ContentServer::Inbox {
    std::mutex mu;
    bool open = true;
    uv_async_t* wake = nullptr;
    std::thread::id loop_thread;
    struct Item {
        std::shared_ptr<ConnRef> ref;
        std::uint64_t serial;
        Response response;
    };
    std::vector<Item> items;
};

// A connection handed over after its 101 went out. The socket is ours until dropped.
struct ContentServer::Handover : Upgraded {
    ContentServer* server;
    int sock;
    std::string early;
    std::function<void()> revoked;
    bool open = true;

    Handover(ContentServer* s, int fd, std::string e) : server(s), sock(fd), early(std::move(e)) {
        server->handed_over_.insert(this);
    }
    ~Handover() override {
        if (!open) return;
        server->handed_over_.erase(this);
        ::close(sock);
    }
    int fd() const override { return sock; }
    std::string take_early_bytes() override { return std::move(early); }
    void on_revoked(std::function<void()> f) override { revoked = std::move(f); }
    // The server stops: the owner stops watching, then the socket closes. The owner may
    // destroy `this` inside the callback, so nothing of it is used after.
    void revoke() {
        open = false;
        int s = sock;
        auto f = std::move(revoked);
        if (f) f();
        ::close(s);
    }
};

struct ContentServer::Acceptor {
    ContentServer* server;
    int fd;
    uv_poll_t poll{};
    bool paused = false;
    bool unix_socket = false;

    void resume() {
        paused = false;
        uv_poll_start(&poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
            auto* a = static_cast<Acceptor*>(h->data);
            if (status == 0) a->server->accept_from(*a);
        });
    }
    // Out of descriptors (or memory), the waiting connection keeps the socket readable: polling
    // on would spin the loop. The sweep resumes accepting a second later.
    void pause() {
        paused = true;
        uv_poll_stop(&poll);
    }
};

struct ContentServer::Conn {
    ContentServer* server;
    int fd;
    uv_poll_t poll{};
    int events = 0;
    bool closing = false;
    std::string remote;                  // TCP: the client's address
    std::optional<PeerCredentials> peer; // unix: the client's credentials
    std::shared_ptr<ConnRef> ref = std::make_shared<ConnRef>(ConnRef{this});
    bool in_process = false;

    // The async request waiting for its Reply (awaiting), and what its answer needs.
    bool awaiting = false;
    std::uint64_t serial = 0; // of the request awaited: a Reply for an older one is stale
    std::shared_ptr<Request> current;
    const std::string* current_pattern = nullptr;
    bool current_keep = false, current_upgrade = false;
    std::uint64_t current_body = 0;
    Clock::time_point current_started;
    UpgradeHandler upgrade_to; // set once a 101 is queued: hand over when it has gone out
    RequestReader reader;
    std::string in; // received, not yet parsed
    std::size_t in_off = 0;
    Clock::time_point last_progress = Clock::now();
    Clock::time_point request_started = Clock::now();

    // The response being sent: `out` first, then `pending` pieces in order, then `body_reader`.
    std::string out;
    std::size_t out_off = 0;
    std::string body; // a literal body, after `out` (pieces and readers come after both)
    std::size_t body_off = 0;
    std::deque<BodyPiece> pending;
    std::uint64_t piece_done = 0; // bytes of pending.front() already sent
    std::shared_ptr<BodyReader> body_reader;
    std::uint64_t reader_pos = 0;
    bool writing = false;
    bool close_after = false;
    bool peer_done = false; // the client half-closed: answer what was buffered, then close

    Conn(ContentServer* s, int f)
        : server(s), fd(f), reader(s->limits_.max_header_bytes, s->limits_.max_body_bytes) {}

    // 0: not watched at all (waiting for a Reply with nothing more worth reading).
    void want(int ev) {
        if (ev == events || closing) return;
        events = ev;
        if (ev)
            uv_poll_start(&poll, ev, on_io);
        else
            uv_poll_stop(&poll);
    }

    void close() {
        if (closing) return;
        closing = true;
        ref->conn = nullptr;
        server->forget(this);
        uv_poll_stop(&poll);
        uv_close(reinterpret_cast<uv_handle_t*>(&poll), [](uv_handle_t* h) {
            auto* c = static_cast<Conn*>(h->data);
            if (c->fd >= 0) ::close(c->fd);
            delete c;
        });
    }

    // After the 101: the socket goes to the route's UpgradeHandler with the bytes that came
    // after the request head. Our poll is closed first (that removes the fd from epoll), so
    // the new owner can watch the fd itself.
    void hand_over() {
        UpgradeHandler handler = std::move(upgrade_to);
        std::string early = in.substr(std::min(in_off, in.size()));
        int sock = fd;
        fd = -1;
        close();
        auto up = std::make_unique<Handover>(server, sock, std::move(early));
        try {
            handler(std::move(up));
        } catch (const std::exception&) {
            // an Upgraded the handler did not keep has closed the connection
        }
    }

    static void on_io(uv_poll_t* h, int status, int ev) {
        auto* c = static_cast<Conn*>(h->data);
        if (c->closing) return;
        if (status < 0) return c->close();
        if (c->writing) {
            if (ev & UV_WRITABLE) c->process();
            return;
        }
        if (ev & UV_READABLE) c->read_some();
    }

    // An async route's answer, on the loop.
    void finish_async(std::uint64_t for_serial, Response r) {
        if (closing || !awaiting || for_serial != serial) return;
        awaiting = false;
        std::shared_ptr<Request> req = std::move(current);
        answer(*req, current_pattern, std::move(r), current_keep, current_started, current_upgrade,
               current_body);
        process(); // sends it (unless the Reply came from inside process(), which goes on)
    }

    // While a Reply is awaited, bytes are read on (a client that leaves is noticed) up to a
    // bound, and after the client's half-close not at all (the socket would stay readable).
    void watch_while_awaiting() {
        bool full = in.size() - in_off > server->limits_.max_header_bytes + kReadChunk;
        want(peer_done || full ? 0 : UV_READABLE);
    }

    // The interim 100. What the socket does not take at once (it may be full of an earlier
    // answer the client has not read) is queued and flushed like any answer, never cut.
    void send_continue() {
        static constexpr std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t n = ::send(fd, interim.data(), interim.size(), MSG_NOSIGNAL);
        auto sent = n > 0 ? static_cast<std::size_t>(n) : 0;
        if (sent == interim.size()) return;
        out.assign(interim.substr(sent));
        out_off = 0;
        writing = true;
    }

    void read_some() {
        for (int i = 0; i < 4; ++i) { // bounded, so one client cannot starve the others
            // Received into one buffer per thread, then appended: resizing `in` by a whole
            // chunk first would zero 64 KiB per request.
            static thread_local char chunk[kReadChunk];
            ssize_t n = ::recv(fd, chunk, kReadChunk, 0);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
                if (n < 0) return close(); // reset: nobody to answer
                // A half-close ends the requests, not the answers to those already here.
                peer_done = true;
                break;
            }
            in.append(chunk, static_cast<std::size_t>(n));
            last_progress = Clock::now();
            if (static_cast<std::size_t>(n) < kReadChunk) break;
        }
        process();
    }

    // Parses and answers what is buffered, one request at a time, until more bytes are
    // needed, a response cannot be sent at once, or an async route's Reply is awaited.
    // Not reentered: a Reply given inside it is sent by the running loop.
    void process() {
        if (in_process) return;
        in_process = true;
        while (!closing && !awaiting) {
            if (writing) {
                if (!flush()) {
                    if (!closing) want(UV_WRITABLE);
                    break;
                }
                if (upgrade_to) {
                    hand_over();
                    break;
                }
                continue;
            }
            if (in_off < in.size()) {
                if (!reader.mid_request()) request_started = Clock::now();
                in_off += reader.feed(std::string_view(in).substr(in_off));
                if (reader.take_expect_continue() &&
                    reader.state() == RequestReader::State::need_more) {
                    send_continue();
                    if (writing) continue; // its rest goes out before anything else
                }
            }
            bool more = true;
            switch (reader.state()) {
            case RequestReader::State::complete:
                respond();
                break;
            case RequestReader::State::error: {
                Response refused =
                    reader.rejection()
                        ? *reader.rejection()
                        : Response::error(reader.error_status(), error_code(reader.error_status()),
                                          reader.error_message());
                Request bad = reader.take();
                if (bad.method.empty()) bad.method = "-";
                bad.remote_address = remote;
                bad.peer = peer;
                answer(bad, nullptr, std::move(refused), false, Clock::now(), false,
                       bad.body.size());
                break;
            }
            case RequestReader::State::need_more:
                if (in_off >= in.size()) {
                    in.clear();
                    in_off = 0;
                    if (peer_done)
                        close(); // no more requests can come
                    else
                        want(UV_READABLE);
                    more = false;
                }
                break;
            }
            if (!more) break;
        }
        if (awaiting && !closing) watch_while_awaiting();
        in_process = false;
    }

    void respond() {
        auto started = Clock::now();
        bool keep = reader.keep_alive();
        bool upgrade = reader.upgrade();
        Request req = reader.take();
        req.remote_address = remote;
        req.peer = peer;
        RouteMatch m = server->router_.resolve(req);
        if (m.async && !m.error) return start_awaiting(std::move(req), m, keep, upgrade, started);
        Response r;
        if (m.error) {
            r = std::move(*m.error);
        } else if (m.stream) { // a streaming route, given the whole (small) body at once
            r = guarded([&] {
                auto sink = (*m.stream)(req);
                sink->data(req.body);
                return sink->finish();
            });
        } else {
            r = guarded([&] { return (*m.handler)(req); });
        }
        answer(req, m.pattern, std::move(r), keep, started, upgrade, req.body.size());
    }

    // Starts an async route. Its Reply comes back here directly when given on the loop's
    // thread (the usual case: an upstream's answer), else through the server's inbox. The
    // Reply holds the request, so a handler may keep using it after the client left.
    void start_awaiting(Request req, const RouteMatch& m, bool keep, bool upgrade,
                        Clock::time_point started) {
        awaiting = true;
        std::uint64_t mine = ++serial;
        current = std::make_shared<Request>(std::move(req));
        current_pattern = m.pattern;
        current_keep = keep;
        current_upgrade = upgrade;
        current_started = started;
        current_body = current->body.size();
        http::Reply reply([inbox = server->inbox_, ref = ref, mine, held = current](Response r) {
            if (std::this_thread::get_id() == inbox->loop_thread) {
                if (inbox->open && ref->conn) ref->conn->finish_async(mine, std::move(r));
                return;
            }
            std::lock_guard lock(inbox->mu);
            if (!inbox->open) return;
            inbox->items.push_back({ref, mine, std::move(r)});
            uv_async_send(inbox->wake);
        });
        std::shared_ptr<Request> req_ref = current; // finish_async may drop `current` inside
        http::start_async(*m.async, *req_ref, reply);
    }

    // Serializes the response into out/pending and marks the connection as writing.
    void answer(const Request& req, const std::string* pattern, Response r, bool keep,
                Clock::time_point started, bool upgrade_request, std::uint64_t request_body) {
        bool switching = r.status == 101 && upgrade_request && r.upgrade;
        if (r.status < 200 && !switching) // an interim status is no final answer
            r = Response::error(500, "internal_error",
                                "the handler answered with a status the request cannot take");
        // After a malformed request the byte stream cannot be trusted: answer, then close.
        // After an upgrade request answered without switching, what follows its head is in
        // the other protocol.
        close_after = !keep || reader.state() == RequestReader::State::error ||
                      (upgrade_request && !switching);
        if (switching) upgrade_to = std::move(r.upgrade);
        std::shared_ptr<OpenFile> file_body; // owns a FileBody's fd whether it is sent or not
        if (r.file) {
            file_body = std::make_shared<OpenFile>(r.file->fd);
            r.file->fd = -1;
        }
        bool head = req.method == "HEAD";
        bool no_body = bodyless_status(r.status);
        std::uint64_t size = r.body_size();

        out.clear();
        out_off = 0;
        body.clear();
        body_off = 0;
        pending.clear();
        piece_done = 0;
        body_reader.reset();
        reader_pos = 0;
        using namespace std::string_view_literals; // no strlen per append
        const char* reason = MHD_get_reason_phrase_for(static_cast<unsigned>(r.status));
        out += "HTTP/1.1 "sv;
        out += std::to_string(r.status);
        out += ' ';
        out += reason && *reason ? std::string_view(reason) : "Unknown"sv;
        out += "\r\n"sv;
        for (const auto& [k, v] : r.headers) {
            if (!header_is_safe(k) || !header_is_safe(v)) continue; // never split a response
            if (framing_header(k)) continue;
            out += k;
            out += ": "sv;
            out += v;
            out += "\r\n"sv;
        }
        if (!no_body) {
            out += "Content-Length: "sv;
            out += std::to_string(size);
            out += "\r\n"sv;
        }
        out += "Date: "sv;
        out += http_date_now();
        out += "\r\n"sv;
        if (switching) { // the protocol comes from the handler's Upgrade field
            out += "Connection: Upgrade\r\n"sv;
        } else {
            if (close_after)
                out += "Connection: close\r\n"sv;
            else if (req.version == "HTTP/1.0")
                out += "Connection: keep-alive\r\n"sv;
        }
        out += "\r\n"sv;

        std::uint64_t sent_body = 0;
        if (!head && !no_body) {
            sent_body = size;
            if (r.has_pieces) {
                for (auto& p : r.pieces)
                    if (p.size() > 0) pending.push_back(std::move(p)); // see more_follows()
            } else if (file_body) {
                if (r.file->length > 0)
                    pending.push_back(BodyPiece{{}, file_body, r.file->offset, r.file->length});
            } else if (r.reader) {
                body_reader = r.reader;
            } else {
                body = std::move(r.body); // sent with the head in one sendmsg, not copied
            }
            inline_small_pieces();
        }
        writing = true;
        if (server->observer_) {
            double seconds = std::chrono::duration<double>(Clock::now() - started).count();
            server->observer_(Exchange{req, pattern ? *pattern : std::string_view(), r.status,
                                       sent_body, seconds, request_body});
        }
    }

    // Leading pieces that fit in kInlineBody join the headers' send (pread of page-cached
    // bytes costs less than a sendfile call for small bodies).
    void inline_small_pieces() {
        std::size_t budget = kInlineBody;
        while (!pending.empty()) {
            BodyPiece& p = pending.front();
            if (p.size() > budget) return;
            if (!p.file) {
                out += p.literal;
            } else {
                std::size_t at = out.size();
                out.resize(at + p.length);
                std::size_t got = 0;
                while (got < p.length) {
                    ssize_t n = ::pread(p.file->fd(), out.data() + at + got, p.length - got,
                                        static_cast<off_t>(p.offset + got));
                    if (n < 0 && errno == EINTR) continue;
                    if (n <= 0) break;
                    got += static_cast<std::size_t>(n);
                }
                if (got < p.length) { // the file is shorter than promised: stop, and close
                    out.resize(at);
                    pending.clear();
                    close_after = true;
                    truncated = true;
                    return;
                }
            }
            budget -= static_cast<std::size_t>(p.size());
            pending.pop_front();
        }
    }
    bool truncated = false; // the body could not be produced whole: close after the part sent

    // Whether body bytes follow what is in `out`: MSG_MORE on the last send of a response
    // would leave its tail corked in the kernel (200 ms on TCP).
    bool more_follows() const {
        return !pending.empty() || (body_reader && reader_pos < body_reader->size());
    }

    // Sends what it can. True when the response is complete (writing ends); false when the
    // socket is full (wait for UV_WRITABLE) or the connection was closed.
    bool flush() {
        for (;;) {
            if (out_off < out.size() || body_off < body.size()) {
                iovec iov[2];
                int count = 0;
                if (out_off < out.size())
                    iov[count++] = {out.data() + out_off, out.size() - out_off};
                if (body_off < body.size())
                    iov[count++] = {body.data() + body_off, body.size() - body_off};
                msghdr msg{};
                msg.msg_iov = iov;
                msg.msg_iovlen = static_cast<std::size_t>(count);
                int flags = MSG_NOSIGNAL | (more_follows() ? MSG_MORE : 0);
                ssize_t n = ::sendmsg(fd, &msg, flags);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN) return false;
                    close();
                    return false;
                }
                auto sent = static_cast<std::size_t>(n);
                std::size_t from_out = std::min(sent, out.size() - out_off);
                out_off += from_out;
                body_off += sent - from_out;
                last_progress = Clock::now();
                continue;
            }
            if (!pending.empty()) {
                BodyPiece& p = pending.front();
                if (!p.file) {
                    out = std::move(p.literal);
                    out_off = 0;
                    pending.pop_front();
                    continue;
                }
                if (piece_done == p.length) {
                    pending.pop_front();
                    piece_done = 0;
                    continue;
                }
                off_t off = static_cast<off_t>(p.offset + piece_done);
                std::size_t want_bytes = static_cast<std::size_t>(
                    std::min<std::uint64_t>(p.length - piece_done, 1 << 30));
                ssize_t n = ::sendfile(fd, p.file->fd(), &off, want_bytes);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN) return false;
                    close();
                    return false;
                }
                if (n == 0) { // file shorter than promised: the response cannot be completed
                    close();
                    return false;
                }
                piece_done += static_cast<std::uint64_t>(n);
                last_progress = Clock::now();
                continue;
            }
            if (body_reader && reader_pos < body_reader->size()) {
                out.resize(kReadChunk);
                std::size_t n = 0;
                try {
                    n = body_reader->read(reader_pos, std::span<char>(out.data(), out.size()));
                } catch (const std::exception&) {
                    n = 0;
                }
                if (n == 0) {
                    close();
                    return false;
                }
                out.resize(n);
                out_off = 0;
                reader_pos += n;
                continue;
            }
            writing = false;
            body_reader.reset();
            out.clear();
            out_off = 0;
            body = std::string(); // the next answer brings its own buffer
            body_off = 0;
            if (close_after || truncated) {
                close();
                return false;
            }
            return true;
        }
    }
};

ContentServer::ContentServer(uv_loop_t* loop, const Router& router, Limits limits)
    : loop_(loop), router_(router), limits_(limits) {}

ContentServer::~ContentServer() {
    stop();
}

void ContentServer::serve(int listen_fd) {
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        ::close(listen_fd);
        throw std::runtime_error("content server: cannot make the listening socket non-blocking");
    }
    if (!inbox_) {
        inbox_ = std::make_shared<Inbox>();
        inbox_->loop_thread = std::this_thread::get_id(); // serve() runs on the loop's thread
        inbox_->wake = new uv_async_t;
        uv_async_init(loop_, inbox_->wake,
                      [](uv_async_t* h) { static_cast<ContentServer*>(h->data)->drain_inbox(); });
        inbox_->wake->data = this;
    }
    auto* a = new Acceptor{this, listen_fd};
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    a->unix_socket = getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0 &&
                     bound.ss_family == AF_UNIX;
    uv_poll_init(loop_, &a->poll, listen_fd);
    a->poll.data = a;
    a->resume();
    acceptors_.push_back(a);
    if (!sweeper_) {
        sweeper_ = new uv_timer_t;
        uv_timer_init(loop_, sweeper_);
        sweeper_->data = this;
        uv_timer_start(
            sweeper_, [](uv_timer_t* t) { static_cast<ContentServer*>(t->data)->sweep(); }, 1000,
            1000);
    }
}

void ContentServer::accept_from(Acceptor& a) {
    for (int i = 0; i < kAcceptBurst; ++i) {
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        int fd = ::accept4(a.fd, reinterpret_cast<sockaddr*>(&from), &from_len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                a.pause();
            return; // EAGAIN, or an error the next readiness will retry
        }
        if (conns_.size() >= limits_.connection_limit) {
            ::close(fd);
            continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // fails on unix: fine
        auto* c = new Conn(this, fd);
        if (a.unix_socket)
            c->peer = unix_peer(fd);
        else
            c->remote = address_text(from);
        c->poll.data = c;
        if (uv_poll_init(loop_, &c->poll, fd) != 0) {
            ::close(fd);
            delete c;
            continue;
        }
        conns_.insert(c);
        c->want(UV_READABLE);
    }
}

void ContentServer::forget(Conn* c) {
    conns_.erase(c);
}

void ContentServer::sweep() {
    for (Acceptor* a : acceptors_)
        if (a->paused) a->resume();
    auto now = Clock::now();
    auto limit = std::chrono::seconds(limits_.idle_timeout_seconds);
    std::vector<Conn*> expired;
    for (Conn* c : conns_) {
        if (c->awaiting) continue; // the route answers in its own time (its Reply is sure)
        bool slow_request = c->reader.mid_request() && now - c->request_started > limit;
        bool idle = now - c->last_progress > limit;
        if (slow_request || idle) expired.push_back(c);
    }
    for (Conn* c : expired)
        c->close();
}

void ContentServer::drain_inbox() {
    std::vector<Inbox::Item> items;
    {
        std::lock_guard lock(inbox_->mu);
        items.swap(inbox_->items);
    }
    for (auto& item : items)
        if (item.ref->conn) item.ref->conn->finish_async(item.serial, std::move(item.response));
}

void ContentServer::set_max_body_bytes(std::size_t bytes) {
    limits_.max_body_bytes = bytes;
    for (Conn* c : conns_)
        c->reader.set_max_body_bytes(bytes);
}

void ContentServer::set_observer(RequestObserver observer) {
    observer_ = std::move(observer);
}

void ContentServer::stop() {
    for (Acceptor* a : acceptors_) {
        uv_poll_stop(&a->poll);
        uv_close(reinterpret_cast<uv_handle_t*>(&a->poll), [](uv_handle_t* h) {
            auto* a = static_cast<Acceptor*>(h->data);
            ::close(a->fd);
            delete a;
        });
    }
    acceptors_.clear();
    std::vector<Conn*> all(conns_.begin(), conns_.end());
    for (Conn* c : all)
        c->close();
    std::vector<Handover*> upgraded(handed_over_.begin(), handed_over_.end());
    handed_over_.clear();
    for (Handover* h : upgraded)
        h->revoke();
    if (inbox_) {
        {
            std::lock_guard lock(inbox_->mu);
            inbox_->open = false; // Replies from now on are dropped
            inbox_->items.clear();
        }
        uv_close(reinterpret_cast<uv_handle_t*>(inbox_->wake),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
        inbox_.reset();
    }
    if (sweeper_) {
        uv_timer_stop(sweeper_);
        uv_close(reinterpret_cast<uv_handle_t*>(sweeper_),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        sweeper_ = nullptr;
    }
}

} // namespace strata::http

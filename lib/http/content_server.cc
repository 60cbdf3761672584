#include "http/content_server.hh"

#include "http/request_reader.hh"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <microhttpd.h> // MHD_get_reason_phrase_for only
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
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
    return s.find_first_of("\r\n") == std::string_view::npos;
}

// Fields that frame the message: the server writes them itself, so a handler's copy (a wrong
// Content-Length, above all) can never desynchronize a keep-alive connection.
bool framing_header(std::string_view name) {
    for (std::string_view f : {"Content-Length", "Transfer-Encoding", "Connection"})
        if (name.size() == f.size() && strncasecmp(name.data(), f.data(), f.size()) == 0)
            return true;
    return false;
}

} // namespace

struct ContentServer::Acceptor {
    ContentServer* server;
    int fd;
    uv_poll_t poll{};
    bool paused = false;

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
    RequestReader reader;
    std::string in; // received, not yet parsed
    std::size_t in_off = 0;
    Clock::time_point last_progress = Clock::now();
    Clock::time_point request_started = Clock::now();

    // The response being sent: `out` first, then `pending` pieces in order, then `body_reader`.
    std::string out;
    std::size_t out_off = 0;
    std::deque<BodyPiece> pending;
    std::uint64_t piece_done = 0; // bytes of pending.front() already sent
    std::shared_ptr<BodyReader> body_reader;
    std::uint64_t reader_pos = 0;
    bool writing = false;
    bool close_after = false;
    bool peer_done = false; // the client half-closed: answer what was buffered, then close

    Conn(ContentServer* s, int f)
        : server(s), fd(f), reader(s->limits_.max_header_bytes, s->limits_.max_body_bytes) {}

    void want(int ev) {
        if (ev == events || closing) return;
        events = ev;
        uv_poll_start(&poll, ev, on_io);
    }

    void close() {
        if (closing) return;
        closing = true;
        server->forget(this);
        uv_poll_stop(&poll);
        uv_close(reinterpret_cast<uv_handle_t*>(&poll), [](uv_handle_t* h) {
            auto* c = static_cast<Conn*>(h->data);
            ::close(c->fd);
            delete c;
        });
    }

    static void on_io(uv_poll_t* h, int status, int ev) {
        auto* c = static_cast<Conn*>(h->data);
        if (c->closing) return;
        if (status < 0) return c->close();
        if (c->writing) {
            if (!(ev & UV_WRITABLE) || !c->flush()) return;
            c->want(UV_READABLE);
            c->process();
            return;
        }
        if (ev & UV_READABLE) c->read_some();
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

    // Parses and answers what is buffered, one request at a time, until more bytes are needed
    // or a response cannot be sent at once.
    void process() {
        while (!closing && !writing) {
            if (in_off < in.size()) {
                if (!reader.mid_request()) request_started = Clock::now();
                in_off += reader.feed(std::string_view(in).substr(in_off));
            }
            switch (reader.state()) {
            case RequestReader::State::complete:
                respond();
                break;
            case RequestReader::State::error: {
                Request bad = reader.take();
                if (bad.method.empty()) bad.method = "-";
                answer(bad, nullptr,
                       Response::error(reader.error_status(), error_code(reader.error_status()),
                                       reader.error_message()),
                       false, Clock::now());
                break;
            }
            case RequestReader::State::need_more:
                if (in_off >= in.size()) {
                    in.clear();
                    in_off = 0;
                    if (peer_done) close(); // no more requests can come
                    return;
                }
                break;
            }
            if (writing && !flush()) {
                if (!closing) want(UV_WRITABLE);
                return;
            }
        }
    }

    void respond() {
        auto started = Clock::now();
        bool keep = reader.keep_alive();
        Request req = reader.take();
        RouteMatch m = server->router_.resolve(req);
        Response r;
        if (m.error) {
            r = std::move(*m.error);
        } else if (m.stream) { // a streaming route, given the whole (small) body at once
            r = guarded([&] {
                auto sink = (*m.stream)(req);
                sink->data(req.body);
                return sink->finish();
            });
        } else if (m.async) { // waited for inline, like blocking routes on this engine
            r = call_async(*m.async, req);
        } else {
            r = guarded([&] { return (*m.handler)(req); });
        }
        answer(req, m.pattern, std::move(r), keep, started);
    }

    // Serializes the response into out/pending and marks the connection as writing.
    void answer(const Request& req, const std::string* pattern, Response r, bool keep,
                Clock::time_point started) {
        // After a malformed request the byte stream cannot be trusted: answer, then close.
        close_after = !keep || reader.state() == RequestReader::State::error;
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
        pending.clear();
        piece_done = 0;
        body_reader.reset();
        reader_pos = 0;
        const char* reason = MHD_get_reason_phrase_for(static_cast<unsigned>(r.status));
        out += "HTTP/1.1 ";
        out += std::to_string(r.status);
        out += ' ';
        out += reason && *reason ? reason : "Unknown";
        out += "\r\n";
        for (const auto& [k, v] : r.headers) {
            if (!header_is_safe(k) || !header_is_safe(v)) continue; // never split a response
            if (framing_header(k)) continue;
            out += k;
            out += ": ";
            out += v;
            out += "\r\n";
        }
        if (!no_body) {
            out += "Content-Length: ";
            out += std::to_string(size);
            out += "\r\n";
        }
        out += "Date: ";
        out += http_date_now();
        out += "\r\n";
        if (close_after)
            out += "Connection: close\r\n";
        else if (req.version == "HTTP/1.0")
            out += "Connection: keep-alive\r\n";
        out += "\r\n";

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
                out += r.body;
            }
            inline_small_pieces();
        }
        writing = true;
        if (server->observer_) {
            double seconds = std::chrono::duration<double>(Clock::now() - started).count();
            server->observer_(Exchange{req, pattern ? *pattern : std::string_view(), r.status,
                                       sent_body, seconds, req.body.size()});
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
            if (out_off < out.size()) {
                int flags = MSG_NOSIGNAL | (more_follows() ? MSG_MORE : 0);
                ssize_t n = ::send(fd, out.data() + out_off, out.size() - out_off, flags);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN) return false;
                    close();
                    return false;
                }
                out_off += static_cast<std::size_t>(n);
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
    auto* a = new Acceptor{this, listen_fd};
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
        int fd = ::accept4(a.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
        bool slow_request = c->reader.mid_request() && now - c->request_started > limit;
        bool idle = now - c->last_progress > limit;
        if (slow_request || idle) expired.push_back(c);
    }
    for (Conn* c : expired)
        c->close();
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
    if (sweeper_) {
        uv_timer_stop(sweeper_);
        uv_close(reinterpret_cast<uv_handle_t*>(sweeper_),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        sweeper_ = nullptr;
    }
}

} // namespace strata::http

// The content engine under real sockets: a uv loop thread serves, the test speaks raw HTTP/1.1
// to it over loopback TCP (and a unix socket) with every wait bounded by a deadline.
#include "http/content_server.hh"
#include "http/listen.hh"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <criterion/criterion.h>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <string>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace strata;
using Clock = std::chrono::steady_clock;

namespace {

// Byte k of the test file named `name`: differs between files and offsets, so a piece
// taken from the wrong place shows.
char pattern_byte(const std::string& name, std::uint64_t k) {
    return static_cast<char>((k * 131 + k / 977 + static_cast<unsigned char>(name[0]) * 17) & 0xff);
}

std::string pattern(const std::string& name, std::uint64_t offset, std::uint64_t length) {
    std::string s(length, '\0');
    for (std::uint64_t i = 0; i < length; ++i)
        s[i] = pattern_byte(name, offset + i);
    return s;
}

struct Seen {
    std::string method, route;
    int status;
    std::uint64_t body_bytes;
};

struct Fixture {
    std::string dir;
    std::string sock;
    int port = 0;
    http::Router router;
    uv_loop_t loop{};
    uv_async_t stop_async{};
    std::unique_ptr<http::ContentServer> server;
    std::thread thread;
    std::mutex mu;
    std::vector<Seen> seen;
    std::vector<std::thread> repliers;                     // async replies from other threads
    std::vector<std::unique_ptr<http::Upgraded>> upgraded; // kept open until stop() revokes
    std::atomic<int> revoked{0};

    std::string path(const std::string& name) const { return dir + "/" + name; }

    void make_file(const std::string& name, std::uint64_t size) {
        int fd = ::open(path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0, "%s: %s", name.c_str(), strerror(errno));
        constexpr std::uint64_t kStep = 1 << 20;
        for (std::uint64_t off = 0; off < size; off += kStep) {
            std::string chunk = pattern(name, off, std::min(kStep, size - off));
            cr_assert_eq(::write(fd, chunk.data(), chunk.size()),
                         static_cast<ssize_t>(chunk.size()));
        }
        ::close(fd);
    }

    std::shared_ptr<http::OpenFile> open_file(const std::string& name) {
        int fd = ::open(path(name).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw http::Error(404, "not_found", "no file " + name);
        return std::make_shared<http::OpenFile>(fd);
    }

    http::BodyPiece piece(const std::string& name, std::uint64_t offset, std::uint64_t length) {
        return http::BodyPiece{{}, open_file(name), offset, length};
    }

    static http::BodyPiece literal(std::string s) { return http::BodyPiece{std::move(s)}; }

    static std::uint64_t arg(const http::Request& r, const char* name, std::uint64_t fallback) {
        auto it = r.query.find(name);
        return it == r.query.end() ? fallback : std::stoull(it->second);
    }

    void add_routes() {
        router.get("/hello", [](http::Request&) { return http::Response::text(200, "hi\n"); });
        router.get("/n/{i}", [](http::Request& r) {
            return http::Response::text(200, "n=" + r.params.at("i"));
        });
        router.post("/echo", [](http::Request& r) {
            return http::Response::text(200, "len=" + std::to_string(r.body.size()) + ":" + r.body);
        });
        router.get("/status/{code}", [](http::Request& r) {
            auto resp = http::Response::text(std::stoi(r.params.at("code")), "must not be sent");
            resp.headers.emplace("ETag", "\"v1\"");
            return resp;
        });
        // Three files (100 KiB, 3 MiB, 1 byte) at offsets, with literals between.
        router.get("/pieces", [this](http::Request&) {
            http::Response r;
            r.has_pieces = true;
            r.pieces.push_back(literal("<"));
            r.pieces.push_back(piece("a", 10, 100 * 1024 - 10));
            r.pieces.push_back(literal("|"));
            r.pieces.push_back(piece("b", 1000, (3 << 20) - 1000));
            r.pieces.push_back(piece("c", 0, 1));
            r.pieces.push_back(literal(">"));
            return r;
        });
        // Under 64 KiB in all: read into the headers' send.
        router.get("/small-pieces", [this](http::Request&) {
            http::Response r;
            r.has_pieces = true;
            r.pieces.push_back(literal("["));
            r.pieces.push_back(piece("a", 5, 1000));
            r.pieces.push_back(literal("-"));
            r.pieces.push_back(piece("c", 0, 1));
            r.pieces.push_back(piece("b", 7, 2000));
            r.pieces.push_back(piece("a", 0, 0));
            r.pieces.push_back(literal("]"));
            return r;
        });
        router.get("/empty-pieces", [](http::Request&) {
            http::Response r;
            r.has_pieces = true;
            return r;
        });
        // One piece of a file; ?off= and ?len= may promise more than the file has.
        router.get("/piece/{name}", [this](http::Request& r) {
            std::string name = r.params.at("name");
            auto size = std::filesystem::file_size(path(name));
            http::Response resp;
            resp.has_pieces = true;
            std::uint64_t off = arg(r, "off", 0);
            resp.pieces.push_back(piece(name, off, arg(r, "len", size - off)));
            return resp;
        });
        // A FileBody (the fd handed over).
        router.get("/file/{name}", [this](http::Request& r) {
            int fd = ::open(path(r.params.at("name")).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) throw http::Error(404, "not_found", "no such file");
            http::Response resp;
            resp.file = http::FileBody{fd, arg(r, "off", 0), arg(r, "len", 0)};
            return resp;
        });
        // The file shrinks after the response was built (replaced or cut by another process).
        router.get("/shrink/{name}", [this](http::Request& r) {
            std::string name = r.params.at("name");
            auto size = std::filesystem::file_size(path(name));
            http::Response resp;
            resp.has_pieces = true;
            resp.pieces.push_back(literal("head:"));
            resp.pieces.push_back(piece(name, 0, size));
            std::filesystem::resize_file(path(name), arg(r, "to", 0));
            return resp;
        });
        // Blocks the loop (the test sends meanwhile, so the server finds everything at once).
        router.get("/sleep", [](http::Request& r) {
            usleep(static_cast<useconds_t>(arg(r, "ms", 100) * 1000));
            return http::Response::text(200, "slept");
        });
        // A body ending in empty pieces after one too big to inline.
        router.get("/tail-pieces", [this](http::Request& r) {
            http::Response resp;
            resp.has_pieces = true;
            if (arg(r, "file", 0))
                resp.pieces.push_back(piece("a", 0, 100 * 1024));
            else
                resp.pieces.push_back(literal(std::string(70 * 1024, 'L')));
            resp.pieces.push_back(literal(""));
            resp.pieces.push_back(piece("c", 0, 0));
            return resp;
        });
        // Framing is the server's business, whatever a handler sets.
        router.get("/framing", [](http::Request&) {
            auto resp = http::Response::text(200, "abc");
            resp.headers.emplace("Content-Length", "999");
            resp.headers.emplace("Transfer-Encoding", "chunked");
            resp.headers.emplace("Connection", "keep-alive");
            return resp;
        });
        // Async routes: answered at once, from a loop timer, from another thread, or never.
        router.add_async("GET", "/async/now", [](http::Request& r, http::Reply reply) {
            reply(http::Response::text(200, "now:" + r.path));
        });
        router.add_async("GET", "/async/later", [this](http::Request& r, http::Reply reply) {
            struct Later {
                uv_timer_t timer;
                http::Reply reply;
            };
            auto* later = new Later{{}, reply};
            uv_timer_init(&loop, &later->timer);
            later->timer.data = later;
            uv_timer_start(
                &later->timer,
                [](uv_timer_t* t) {
                    auto* l = static_cast<Later*>(t->data);
                    l->reply(http::Response::text(200, "later"));
                    uv_close(reinterpret_cast<uv_handle_t*>(t),
                             [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
                },
                arg(r, "ms", 50), 0);
        });
        router.add_async("GET", "/async/thread", [this](http::Request& r, http::Reply reply) {
            auto ms = arg(r, "ms", 50);
            std::lock_guard lock(mu);
            repliers.emplace_back([reply, ms] {
                usleep(static_cast<useconds_t>(ms * 1000));
                reply(http::Response::text(200, "thread"));
            });
        });
        router.add_async("GET", "/async/lost", [](http::Request&, http::Reply) {});
        router.add_async("POST", "/async/echo", [](http::Request& r, http::Reply reply) {
            reply(http::Response::text(200, "len=" + std::to_string(r.body.size())));
        });
        // Who the server says the client is, and the target as sent.
        router.get("/who", [](http::Request& r) {
            std::string uid = r.peer ? std::to_string(r.peer->uid) : "-";
            return http::Response::text(200, r.remote_address + "|" + r.target + "|" + uid);
        });
        // A protocol switch: after the 101 the handler writes what came with the head, then
        // keeps the connection (drop=1: closes it at once).
        router.add_async("GET", "/ws", [this](http::Request& r, http::Reply reply) {
            bool drop = arg(r, "drop", 0) != 0;
            http::Response resp;
            resp.status = 101;
            resp.headers.emplace("Upgrade", "test");
            resp.upgrade = [this, drop](std::unique_ptr<http::Upgraded> up) {
                std::string msg = "early=" + up->take_early_bytes() + ";";
                (void)!::send(up->fd(), msg.data(), msg.size(), MSG_NOSIGNAL);
                if (drop) return;
                up->on_revoked([this] { ++revoked; });
                upgraded.push_back(std::move(up));
            };
            reply(std::move(resp));
        });
        // A literal body far over the socket buffer: sent with the head by sendmsg, in parts.
        router.get("/big-literal", [](http::Request&) {
            return http::Response::text(200, pattern("L", 0, 3 << 20));
        });
        router.get("/reader", [](http::Request& r) {
            struct Reader : http::BodyReader {
                std::uint64_t n;
                explicit Reader(std::uint64_t n) : n(n) {}
                std::uint64_t size() const override { return n; }
                std::size_t read(std::uint64_t offset, std::span<char> buf) override {
                    std::size_t k = std::min<std::uint64_t>(buf.size(), n - offset);
                    for (std::size_t i = 0; i < k; ++i)
                        buf[i] = pattern_byte("r", offset + i);
                    return k;
                }
            };
            http::Response resp;
            resp.reader = std::make_shared<Reader>(arg(r, "len", 100 * 1024 + 3));
            return resp;
        });
    }

    explicit Fixture(http::Limits limits) {
        char tmpl[] = "/tmp/strata-content-test-XXXXXX";
        cr_assert_not_null(mkdtemp(tmpl));
        dir = tmpl;
        sock = dir + "/c.sock";
        add_routes();
        uv_loop_init(&loop);
        server = std::make_unique<http::ContentServer>(&loop, router, limits);
        server->set_observer([this](const http::Exchange& e) {
            std::lock_guard lock(mu);
            seen.push_back({e.request.method, std::string(e.route), e.status, e.body_bytes});
        });
        int tfd = http::listen_tcp("127.0.0.1:0");
        port = http::bound_port(tfd);
        server->serve(tfd);
        server->serve(http::listen_unix(sock, 0600, static_cast<gid_t>(-1)));
        stop_async.data = this;
        uv_async_init(&loop, &stop_async, [](uv_async_t* a) {
            auto* self = static_cast<Fixture*>(a->data);
            self->server->stop();
            uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
        });
        thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
    }

    ~Fixture() {
        {
            std::lock_guard lock(mu);
            for (auto& t : repliers)
                t.join();
        }
        if (!stopped) {
            uv_async_send(&stop_async);
            thread.join();
        }
        upgraded.clear(); // revoked: their destruction is a no-op
        server.reset();
        uv_loop_close(&loop);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    // Stops the server on its loop, and waits until it has.
    void server_stop_and_wait() {
        uv_async_send(&stop_async);
        thread.join();
        stopped = true;
    }
    bool stopped = false;

    std::vector<Seen> observed() {
        std::lock_guard lock(mu);
        return seen;
    }
};

Fixture* g_fx = nullptr;

http::Limits default_limits() {
    http::Limits l;
    l.max_header_bytes = 8192;
    l.max_body_bytes = 1000;
    l.connection_limit = 64;
    l.idle_timeout_seconds = 60;
    return l;
}

void start(http::Limits limits = default_limits()) {
    g_fx = new Fixture(limits);
}

// Also when an assertion failed: Criterion runs .fini in the test's process.
void teardown() {
    delete g_fx;
    g_fx = nullptr;
}

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Reply {
    int status = 0;
    std::string head; // status line and fields, up to the blank line
    std::string body;
    bool complete = false; // the whole body arrived

    std::optional<std::string> header(const std::string& name) const {
        std::size_t at = head.find("\r\n");
        while (at != std::string::npos && at + 2 < head.size()) {
            std::size_t end = head.find("\r\n", at + 2);
            std::string line = head.substr(at + 2, end - at - 2);
            auto colon = line.find(':');
            if (colon == name.size() && strncasecmp(line.c_str(), name.c_str(), colon) == 0)
                return line.substr(line.find_first_not_of(' ', colon + 1));
            at = end;
        }
        return std::nullopt;
    }
};

// One client connection, every wait bounded.
struct Client {
    int fd = -1;
    std::string buf;      // received, not yet returned
    bool eof = false;     // the server closed (or reset) the connection
    double timeout = 5.0; // seconds, per wait

    explicit Client(int f) : fd(f) {}
    ~Client() {
        if (fd >= 0) ::close(fd);
    }
    Client(const Client&) = delete;

    // Waits up to `seconds` for bytes; false on timeout or close.
    bool receive(double seconds) {
        if (eof) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(seconds * 1000)) <= 0) return false;
        char tmp[65536];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        if (n <= 0) {
            eof = true;
            return false;
        }
        buf.append(tmp, static_cast<std::size_t>(n));
        return true;
    }

    // Sends everything; false when the server closed first.
    bool send(const std::string& data) {
        std::size_t off = 0;
        auto deadline = Clock::now() + std::chrono::duration<double>(timeout);
        while (off < data.size()) {
            ssize_t n =
                ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
            if (Clock::now() > deadline) return false;
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 100);
        }
        return true;
    }

    // Reads one response (no body for HEAD, 1xx, 204, 304); returns what arrived by the
    // deadline, complete or not.
    Reply read(bool head_request = false) {
        Reply r;
        auto deadline = Clock::now() + std::chrono::duration<double>(timeout);
        std::size_t end;
        while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
            if (!receive(std::chrono::duration<double>(deadline - Clock::now()).count())) {
                r.head = buf;
                return r;
            }
        }
        r.head = buf.substr(0, end + 2);
        buf.erase(0, end + 4);
        if (r.head.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(r.head.substr(9, 3));
        std::size_t length = 0;
        bool bodyless = head_request || r.status < 200 || r.status == 204 || r.status == 304;
        if (auto cl = r.header("Content-Length"); cl && !bodyless) length = std::stoull(*cl);
        while (buf.size() < length &&
               receive(std::chrono::duration<double>(deadline - Clock::now()).count())) {
        }
        std::size_t take = std::min(length, buf.size());
        r.body = buf.substr(0, take);
        buf.erase(0, take);
        r.complete = r.body.size() == length;
        return r;
    }

    // Whether the server closes the connection within `seconds` (bytes that arrive meanwhile
    // are kept in buf).
    bool closed_within(double seconds) {
        auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
        while (!eof) {
            double left = std::chrono::duration<double>(deadline - Clock::now()).count();
            if (left <= 0) return false;
            receive(left);
        }
        return true;
    }
};

std::unique_ptr<Client> connect_tcp() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(g_fx->port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0, "%s",
                 strerror(errno));
    return std::make_unique<Client>(fd);
}

std::unique_ptr<Client> connect_unix() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, g_fx->sock.c_str());
    cr_assert_eq(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0, "%s",
                 strerror(errno));
    return std::make_unique<Client>(fd);
}

// One request on a fresh TCP connection.
Reply exchange(const std::string& request, bool head_request = false) {
    auto c = connect_tcp();
    c->send(request);
    return c->read(head_request);
}

std::string get(const std::string& target, const std::string& extra = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

std::string pieces_body() {
    return "<" + pattern("a", 10, 100 * 1024 - 10) + "|" + pattern("b", 1000, (3 << 20) - 1000) +
           pattern("c", 0, 1) + ">";
}

void make_piece_files() {
    g_fx->make_file("a", 100 * 1024);
    g_fx->make_file("b", 3 << 20);
    g_fx->make_file("c", 1);
}

// A readable assertion message: the head of a reply.
const char* show(const Reply& r) {
    static thread_local std::string s;
    s = r.head.substr(0, 400) + (r.complete ? "" : " [incomplete]");
    return s.c_str();
}

} // namespace

TestSuite(content_server, .fini = teardown, .timeout = 30);

Test(content_server, get_literal_body) {
    start();
    auto r = exchange(get("/hello"));
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.body, "hi\n");
    cr_assert_eq(r.header("Content-Length").value_or(""), "3");
    cr_assert_eq(r.header("Content-Type").value_or(""), "text/plain; charset=utf-8");
    cr_assert(r.header("Date").has_value());
    cr_assert(!r.header("Connection").has_value(), "%s", show(r));
    r = exchange(get("/nope"));
    cr_assert_eq(r.status, 404, "%s", show(r));
    cr_assert(r.body.find("\"not_found\"") != std::string::npos, "%s", r.body.c_str());
    r = exchange("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert_eq(r.status, 405, "%s", show(r));
    cr_assert_eq(r.header("Allow").value_or(""), "GET");
}

Test(content_server, head_has_headers_only) {
    start();
    make_piece_files();
    auto c = connect_tcp();
    auto get_reply = exchange(get("/hello"));
    c->send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    auto r = c->read(true);
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.header("Content-Length").value_or(""), "3");
    cr_assert_eq(r.header("Content-Type"), get_reply.header("Content-Type"));
    // No body bytes: the next answer on the connection starts right after the head.
    c->send("HEAD /pieces HTTP/1.1\r\nHost: t\r\n\r\n");
    r = c->read(true);
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.header("Content-Length").value_or(""), std::to_string(pieces_body().size()));
    c->send(get("/n/1"));
    r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.body, "n=1");
    cr_assert(c->buf.empty(), "stray bytes: %zu", c->buf.size());
    auto seen = g_fx->observed();
    cr_assert_geq(seen.size(), 3u);
    cr_assert_eq(seen[1].method, "HEAD");
    cr_assert_eq(seen[1].body_bytes, 0u, "HEAD sends no body bytes");
}

Test(content_server, file_pieces_arrive_byte_exact) {
    start();
    make_piece_files();
    std::string want = pieces_body();
    for (int round = 0; round < 2; ++round) { // TCP, then the unix socket
        auto c = round == 0 ? connect_tcp() : connect_unix();
        c->send(get("/pieces"));
        auto r = c->read();
        cr_assert_eq(r.status, 200, "%s", show(r));
        cr_assert_eq(r.header("Content-Length").value_or(""), std::to_string(want.size()));
        cr_assert(r.complete, "%zu of %zu bytes", r.body.size(), want.size());
        cr_assert(r.body == want, "the body of pieces differs (round %d)", round);
        // And the connection is still usable.
        c->send(get("/hello"));
        cr_assert_eq(c->read().body, "hi\n");
    }
}

Test(content_server, small_pieces_inline) {
    start();
    make_piece_files();
    std::string want =
        "[" + pattern("a", 5, 1000) + "-" + pattern("c", 0, 1) + pattern("b", 7, 2000) + "]";
    auto c = connect_tcp();
    for (int i = 0; i < 3; ++i) {
        c->send(get("/small-pieces"));
        auto r = c->read();
        cr_assert_eq(r.status, 200, "%s", show(r));
        cr_assert(r.complete && r.body == want, "inline pieces differ (%zu bytes)", r.body.size());
    }
    c->send(get("/empty-pieces"));
    auto r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.header("Content-Length").value_or(""), "0");
    c->send(get("/hello"));
    cr_assert_eq(c->read().body, "hi\n");
}

Test(content_server, file_body_and_reader_body) {
    start();
    g_fx->make_file("f", 300 * 1024);
    auto c = connect_tcp();
    c->send(get("/file/f?off=100&len=200000"));
    auto r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert(r.complete && r.body == pattern("f", 100, 200000), "file body differs");
    c->send(get("/file/f?off=3&len=10"));
    r = c->read();
    cr_assert(r.complete && r.body == pattern("f", 3, 10), "small file body differs");
    // A streamed body on a keep-alive TCP connection: its last bytes must not wait.
    for (std::uint64_t len : {100u * 1024 + 3, 10u, 1u << 20}) {
        auto t = Clock::now();
        c->send(get("/reader?len=" + std::to_string(len)));
        r = c->read();
        cr_assert(r.complete && r.body == pattern("r", 0, len), "reader body differs (%zu of %zu)",
                  r.body.size(), static_cast<std::size_t>(len));
        cr_assert_lt(seconds_since(t), 0.15, "the reader's last bytes were held back: %.3f s",
                     seconds_since(t));
    }
}

Test(content_server, bodyless_statuses) {
    start();
    auto c = connect_tcp();
    for (const char* code : {"304", "204"}) {
        c->send(get(std::string("/status/") + code));
        auto r = c->read();
        cr_assert_eq(r.status, std::stoi(code), "%s", show(r));
        cr_assert(!r.header("Content-Length").has_value(), "%s", show(r));
        cr_assert_eq(r.header("ETag").value_or(""), "\"v1\"");
    }
    // Nothing of the bodies was sent: the next answer parses cleanly.
    c->send(get("/hello"));
    auto r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.body, "hi\n");
    auto seen = g_fx->observed();
    cr_assert_eq(seen.size(), 3u);
    cr_assert_eq(seen[0].status, 304);
    cr_assert_eq(seen[0].body_bytes, 0u);
    cr_assert_eq(seen[1].body_bytes, 0u);
}

Test(content_server, keep_alive) {
    start();
    auto c = connect_tcp();
    for (int i = 0; i < 3; ++i) {
        c->send(get("/n/" + std::to_string(i)));
        auto r = c->read();
        cr_assert_eq(r.status, 200, "request %d: %s", i, show(r));
        cr_assert_eq(r.body, "n=" + std::to_string(i));
    }
    // A chunked upload, then more requests on the same connection.
    c->send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
    auto r = c->read();
    cr_assert_eq(r.body, "len=7:abcdefg", "%s", show(r));
    c->send(get("/n/9"));
    cr_assert_eq(c->read().body, "n=9");
    cr_assert(!c->closed_within(0.2), "a keep-alive connection was closed");
}

Test(content_server, pipelining_in_order) {
    start();
    make_piece_files();
    auto c = connect_tcp();
    std::string all = get("/n/1") + get("/n/2") + get("/pieces") +
                      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" +
                      get("/n/5");
    c->send(all);
    for (int i = 1; i <= 5; ++i) {
        auto r = c->read();
        cr_assert_eq(r.status, 200, "response %d: %s", i, show(r));
        cr_assert(r.complete, "response %d incomplete", i);
        if (i == 3)
            cr_assert(r.body == pieces_body(), "the large body in the middle differs");
        else if (i == 4)
            cr_assert_eq(r.body, "len=5:hello");
        else
            cr_assert_eq(r.body, "n=" + std::to_string(i));
    }
    cr_assert(c->buf.empty());
    // Trickled byte by byte, pipelined requests still come out whole and in order.
    std::string two = get("/n/7") + get("/n/8");
    for (char ch : two)
        c->send(std::string(1, ch));
    cr_assert_eq(c->read().body, "n=7");
    cr_assert_eq(c->read().body, "n=8");
}

Test(content_server, connection_close) {
    start();
    auto c = connect_tcp();
    c->send(get("/hello", "Connection: close\r\n"));
    auto r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.header("Connection").value_or(""), "close");
    cr_assert_eq(r.body, "hi\n");
    cr_assert(c->closed_within(2), "not closed after Connection: close");
    cr_assert(c->buf.empty());
}

Test(content_server, http10) {
    start();
    auto c = connect_tcp();
    c->send("GET /hello HTTP/1.0\r\n\r\n");
    auto r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.body, "hi\n");
    cr_assert(c->closed_within(2), "an HTTP/1.0 connection stayed open");
    c = connect_tcp();
    c->send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = c->read();
    cr_assert_eq(r.header("Connection").value_or(""), "keep-alive", "%s", show(r));
    c->send("GET /n/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert_eq(c->read().body, "n=2");
}

Test(content_server, malformed_is_400_and_close) {
    start();
    for (const std::string& bad :
         {std::string("GARBAGE\r\n\r\n"), std::string("\0\xff\r\n\r\n", 6),
          std::string("GET /hello HTTP/1.1\r\n\r\n"), // no Host
          std::string("GET / HTTP/1.1\r\nHost: t\r\nContent-Length : 3\r\n\r\nabc"),
          std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
          std::string("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n")}) {
        auto c = connect_tcp();
        c->send(bad + get("/hello"));
        auto r = c->read();
        cr_assert_eq(r.status, 400, "%s -> %s", bad.c_str(), show(r));
        cr_assert_eq(r.header("Connection").value_or(""), "close");
        cr_assert(r.body.find("bad_request") != std::string::npos, "%s", r.body.c_str());
        cr_assert(c->closed_within(2), "not closed after a malformed request");
        cr_assert(c->buf.empty(), "the pipelined request after garbage was answered");
    }
    auto r = exchange("GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    cr_assert_eq(r.status, 505, "%s", show(r));
    // A route that does not switch protocols answers; what follows the head is not HTTP.
    r = exchange(
        "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.header("Connection").value_or(""), "close");
    r = exchange("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    cr_assert_eq(r.status, 501, "%s", show(r));
    auto seen = g_fx->observed();
    cr_assert_eq(seen.size(), 9u);
    cr_assert_eq(seen[0].method, "-");
    cr_assert_eq(seen[0].route, "");
    r = exchange(get("/hello"));
    cr_assert_eq(r.status, 200, "the server stopped serving: %s", show(r));
}

Test(content_server, header_limit_is_431) {
    start();
    auto c = connect_tcp();
    c->send(get("/hello", "X-Big: " + std::string(20000, 'a') + "\r\n"));
    auto r = c->read();
    cr_assert_eq(r.status, 431, "%s", show(r));
    cr_assert(r.body.find("headers_too_large") != std::string::npos);
    cr_assert(c->closed_within(2));
    r = exchange("GET /" + std::string(10000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert_eq(r.status, 431, "%s", show(r));
}

Test(content_server, body_limit_is_413) {
    start();
    auto c = connect_tcp();
    c->send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n" +
            std::string(1001, 'x'));
    auto r = c->read();
    cr_assert_eq(r.status, 413, "%s", show(r));
    cr_assert(r.body.find("payload_too_large") != std::string::npos);
    cr_assert(c->closed_within(2));
    // Chunked, over the limit only once decoded bytes add up.
    std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i)
        req += "190\r\n" + std::string(400, 'y') + "\r\n";
    r = exchange(req + "0\r\n\r\n");
    cr_assert_eq(r.status, 413, "%s", show(r));
    // At the limit it is served; a lower limit applies to later requests.
    r = exchange("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
                 std::string(1000, 'z'));
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.body.size(), 1009u);
}

Test(content_server, big_body_refused_while_client_still_sends) {
    start();
    // The client is still sending a large body when the 413 comes: it must still read it.
    auto c = connect_tcp();
    std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 8000000\r\n\r\n";
    c->send(req);
    c->timeout = 2;
    c->send(std::string(8000000, 'x')); // may fail half way: the server has answered
    c->timeout = 5;
    auto r = c->read();
    cr_assert_eq(r.status, 413, "%s", show(r));
}

Test(content_server, connection_limit) {
    auto limits = default_limits();
    limits.connection_limit = 2;
    start(limits);
    auto a = connect_tcp();
    auto b = connect_tcp();
    a->send(get("/n/1"));
    b->send(get("/n/2"));
    cr_assert_eq(a->read().body, "n=1");
    cr_assert_eq(b->read().body, "n=2");
    auto extra = connect_tcp(); // the kernel completes the handshake; the server closes it
    extra->send(get("/n/3"));
    cr_assert(extra->closed_within(3), "a connection over the limit was kept");
    cr_assert(extra->buf.empty(), "a connection over the limit was answered");
    // The two admitted ones still work, and a freed slot is usable again.
    a->send(get("/n/4"));
    cr_assert_eq(a->read().body, "n=4");
    b.reset();
    bool served = false;
    for (int i = 0; i < 50 && !served; ++i) { // the server notices b's close
        auto d = connect_tcp();
        d->send(get("/n/5"));
        d->timeout = 1;
        served = d->read().body == "n=5";
        if (!served) usleep(20 * 1000);
    }
    cr_assert(served, "a freed connection slot was not reused");
}

Test(content_server, idle_timeouts) {
    auto limits = default_limits();
    limits.idle_timeout_seconds = 1;
    start(limits);
    auto t = Clock::now();
    auto half = connect_tcp();
    half->send("GET /hel");
    auto idle = connect_tcp();
    idle->send(get("/hello"));
    cr_assert_eq(idle->read().body, "hi\n");
    auto fresh = connect_tcp(); // connected, nothing sent
    // A trickling client makes progress but never finishes its head (slowloris).
    auto slow = connect_tcp();
    std::string line = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    bool slow_closed = false;
    for (int i = 0; i < 40 && !slow_closed; ++i) {
        slow->send(std::string(1, line[std::min<std::size_t>(i, line.size() - 1)]));
        slow_closed = slow->closed_within(0.1);
    }
    cr_assert(slow_closed || slow->closed_within(1), "a trickling request head was not cut off");
    cr_assert_lt(seconds_since(t), 3.5);
    cr_assert(half->closed_within(3.5 - seconds_since(t)), "a half request line stayed open");
    cr_assert(idle->closed_within(3.5 - seconds_since(t)), "an idle keep-alive stayed open");
    cr_assert(fresh->closed_within(3.5 - seconds_since(t)), "a silent connection stayed open");
    cr_assert(half->buf.empty() && fresh->buf.empty());
}

Test(content_server, slow_body_is_cut_off) {
    auto limits = default_limits();
    limits.idle_timeout_seconds = 1;
    start(limits);
    auto t = Clock::now();
    auto c = connect_tcp();
    c->send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\n");
    bool closed = false;
    for (int i = 0; i < 40 && !closed; ++i) {
        c->send("x");
        closed = c->closed_within(0.1);
    }
    cr_assert(closed, "a trickling body was not cut off");
    cr_assert_lt(seconds_since(t), 3.5);
}

Test(content_server, active_connections_survive_the_timeout) {
    auto limits = default_limits();
    limits.idle_timeout_seconds = 1;
    start(limits);
    auto c = connect_tcp();
    auto t = Clock::now();
    for (int i = 0; seconds_since(t) < 3; ++i) {
        c->send(get("/n/" + std::to_string(i)));
        auto r = c->read();
        cr_assert_eq(r.body, "n=" + std::to_string(i), "request %d after %.1f s: %s", i,
                     seconds_since(t), show(r));
        usleep(300 * 1000);
    }
}

Test(content_server, non_reading_client_blocks_nobody) {
    start();
    g_fx->make_file("big", 20 << 20);
    auto stuck = connect_tcp();
    stuck->send(get("/piece/big"));
    usleep(200 * 1000); // the server fills the socket and waits
    auto t = Clock::now();
    auto other = connect_tcp();
    other->send(get("/hello"));
    auto r = other->read();
    cr_assert_eq(r.body, "hi\n", "%s", show(r));
    cr_assert_lt(seconds_since(t), 1.0);
    // Once it reads, the stuck client gets its whole body.
    stuck->timeout = 20;
    r = stuck->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert(r.complete, "%zu bytes", r.body.size());
    cr_assert(r.body == pattern("big", 0, 20 << 20), "the 20 MiB body differs");
}

Test(content_server, non_reading_client_is_closed_after_the_timeout) {
    auto limits = default_limits();
    limits.idle_timeout_seconds = 1;
    start(limits);
    g_fx->make_file("big", 20 << 20);
    auto stuck = connect_tcp();
    stuck->send(get("/piece/big"));
    usleep(3500 * 1000); // the sweep closes it after 1-2 s without progress
    // What was in flight before the close arrives, then the end, well short of 20 MiB.
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!stuck->eof && Clock::now() < deadline)
        stuck->receive(1);
    cr_assert(stuck->eof, "a client that stopped reading kept its connection");
    cr_assert_lt(stuck->buf.size(), 20u << 20);
    auto r = exchange(get("/hello"));
    cr_assert_eq(r.body, "hi\n");
}

Test(content_server, short_file_closes_the_connection) {
    start();
    g_fx->make_file("s", 100 * 1024);
    g_fx->make_file("tiny", 10);
    g_fx->make_file("shrinks", 2 << 20);
    g_fx->make_file("shrinks-small", 4000);
    struct Case {
        std::string target;
        std::uint64_t promised;
    } cases[] = {
        {"/piece/s?len=1048576", 1048576},          // sendfile runs out
        {"/piece/s?off=200000&len=10", 10},         // starts past the end
        {"/piece/tiny?len=1000", 1000},             // inline pread runs out
        {"/file/s?off=0&len=500000", 500000},       // a FileBody
        {"/shrink/shrinks?to=1000", 5 + (2 << 20)}, // cut after the response was built
        {"/shrink/shrinks-small?to=0", 5 + 4000},
    };
    for (const auto& k : cases) {
        auto c = connect_tcp();
        c->send(get(k.target) + get("/hello"));
        auto r = c->read();
        cr_assert_eq(r.status, 200, "%s: %s", k.target.c_str(), show(r));
        cr_assert_eq(r.header("Content-Length").value_or(""), std::to_string(k.promised), "%s",
                     k.target.c_str());
        cr_assert(!r.complete, "%s: a short file made a whole body", k.target.c_str());
        cr_assert(c->closed_within(3), "%s: not closed", k.target.c_str());
        cr_assert_lt(r.body.size() + c->buf.size(), k.promised, "%s", k.target.c_str());
        // The server is fine.
        auto ok = exchange(get("/hello"));
        cr_assert_eq(ok.body, "hi\n", "after %s: %s", k.target.c_str(), show(ok));
    }
}

Test(content_server, observer_sees_route_status_and_bytes) {
    start();
    make_piece_files();
    auto c = connect_tcp();
    c->send(get("/n/42"));
    c->read();
    c->send(get("/pieces"));
    c->read();
    c->send(get("/missing"));
    c->read();
    c->send("HEAD /n/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    c->read(true);
    auto seen = g_fx->observed();
    cr_assert_eq(seen.size(), 4u);
    cr_assert_eq(seen[0].route, "/n/{i}");
    cr_assert_eq(seen[0].status, 200);
    cr_assert_eq(seen[0].body_bytes, 4u);
    cr_assert_eq(seen[0].method, "GET");
    cr_assert_eq(seen[1].route, "/pieces");
    cr_assert_eq(seen[1].body_bytes, pieces_body().size());
    cr_assert_eq(seen[2].route, "");
    cr_assert_eq(seen[2].status, 404);
    cr_assert_eq(seen[3].route, "/n/{i}");
    cr_assert_eq(seen[3].method, "HEAD");
    cr_assert_eq(seen[3].body_bytes, 0u);
}

Test(content_server, many_clients_at_once) {
    start();
    make_piece_files();
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 20; ++i) {
        clients.push_back(i % 2 ? connect_unix() : connect_tcp());
        clients.back()->send(get(i % 5 == 0 ? "/pieces" : "/n/" + std::to_string(i)));
    }
    std::string want = pieces_body();
    for (int i = 0; i < 20; ++i) {
        auto r = clients[i]->read();
        cr_assert(r.complete, "client %d: %s", i, show(r));
        if (i % 5 == 0)
            cr_assert(r.body == want, "client %d: pieces differ", i);
        else
            cr_assert_eq(r.body, "n=" + std::to_string(i));
    }
}

Test(content_server, empty_tail_pieces_are_not_corked) {
    start();
    make_piece_files();
    auto c = connect_tcp();
    for (const char* target : {"/tail-pieces", "/tail-pieces?file=1"}) {
        double best = 1e9;
        for (int i = 0; i < 3; ++i) { // the fastest of three: robust to a loaded machine
            auto t = Clock::now();
            c->send(get(target));
            auto r = c->read();
            cr_assert(r.complete, "%s: %s", target, show(r));
            best = std::min(best, seconds_since(t));
        }
        cr_assert_lt(best, 0.1, "%s: the body's tail was held back %.3f s", target, best);
    }
}

Test(content_server, reader_tail_is_not_corked) {
    start();
    auto c = connect_tcp();
    double best = 1e9;
    for (int i = 0; i < 3; ++i) {
        auto t = Clock::now();
        c->send(get("/reader?len=10"));
        auto r = c->read();
        cr_assert(r.complete && r.body == pattern("r", 0, 10), "%s", show(r));
        best = std::min(best, seconds_since(t));
    }
    cr_assert_lt(best, 0.1, "the reader's last bytes were held back %.3f s", best);
}

Test(content_server, handler_framing_headers_are_ignored) {
    start();
    auto c = connect_tcp();
    c->send(get("/framing") + get("/hello"));
    auto r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.header("Content-Length").value_or(""), "3", "%s", show(r));
    cr_assert(r.head.find("999") == std::string::npos, "%s", show(r));
    cr_assert(!r.header("Transfer-Encoding").has_value(), "%s", show(r));
    cr_assert(!r.header("Connection").has_value(), "%s", show(r));
    cr_assert_eq(r.body, "abc");
    cr_assert_eq(c->read().body, "hi\n");
}

Test(content_server, half_closed_client_gets_its_answers) {
    start();
    // Exactly two 64 KiB reads of pipelined requests, then the client's FIN: all of it is
    // waiting when the loop wakes (it is busy in /sleep meanwhile).
    std::string batch;
    int count = 0;
    while (batch.size() + 200 < 2 * 65536)
        batch += get("/n/" + std::to_string(count++));
    std::string last = "GET /n/" + std::to_string(count++) + " HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    std::size_t pad = 2 * 65536 - batch.size() - last.size() - 4;
    batch += last + std::string(pad, 'p') + "\r\n\r\n";
    cr_assert_eq(batch.size(), 2u * 65536);
    auto sleeper = connect_tcp();
    sleeper->send(get("/sleep?ms=300"));
    usleep(100 * 1000);
    auto c = connect_tcp();
    c->send(batch);
    shutdown(c->fd, SHUT_WR);
    cr_assert_eq(sleeper->read().body, "slept");
    for (int i = 0; i < count; ++i) {
        auto r = c->read();
        cr_assert_eq(r.body, "n=" + std::to_string(i), "answer %d of %d: %s", i, count, show(r));
    }
    cr_assert(c->closed_within(2), "not closed after the half-closed client's last answer");
    // A half-closed client with nothing pending is closed too.
    auto d = connect_tcp();
    shutdown(d->fd, SHUT_WR);
    cr_assert(d->closed_within(2));
}

Test(content_server, out_of_descriptors_does_not_spin) {
    start();
    std::vector<std::unique_ptr<Client>> waiting;
    for (int i = 0; i < 3; ++i) {
        waiting.push_back(connect_tcp()); // in the backlog until the server can accept
        waiting.back()->send(get("/n/" + std::to_string(i)));
    }
    // No descriptor left for the server's accept4 (the lowest free one is over the limit).
    rlimit old{};
    getrlimit(RLIMIT_NOFILE, &old);
    int lowest = dup(0);
    close(lowest);
    rlimit tight = old;
    tight.rlim_cur = static_cast<rlim_t>(lowest);
    setrlimit(RLIMIT_NOFILE, &tight);
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    usleep(1000 * 1000);
    getrusage(RUSAGE_SELF, &after);
    setrlimit(RLIMIT_NOFILE, &old);
    auto cpu = [](const rusage& u) {
        return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
               (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
    };
    double used = cpu(after) - cpu(before);
    cr_assert_lt(used, 0.3, "the loop spun on the listening socket: %.2f s CPU in 1 s", used);
    // Descriptors are back: the waiting connections are served.
    for (int i = 0; i < 3; ++i) {
        auto r = waiting[i]->read();
        cr_assert_eq(r.body, "n=" + std::to_string(i), "connection %d: %s", i, show(r));
    }
}

Test(content_server, async_replies_from_the_loop_a_timer_and_a_thread) {
    start();
    cr_assert_eq(exchange(get("/async/now")).body, "now:/async/now");
    cr_assert_eq(exchange(get("/async/later?ms=20")).body, "later");
    cr_assert_eq(exchange(get("/async/thread?ms=20")).body, "thread");
    // Pipelined: the slow ones first, yet every answer in request order.
    auto c = connect_tcp();
    c->send(get("/async/later?ms=200") + get("/async/thread?ms=100") + get("/async/now") +
            get("/hello"));
    for (const char* want : {"later", "thread", "now:/async/now", "hi\n"}) {
        auto r = c->read();
        cr_assert_eq(r.body, want, "%s", show(r));
    }
    // The loop kept serving others while those waited.
    auto slow = connect_tcp();
    slow->send(get("/async/later?ms=500"));
    auto t0 = Clock::now();
    cr_assert_eq(exchange(get("/hello")).body, "hi\n");
    cr_assert_lt(seconds_since(t0), 0.4, "a waiting async request held up another client");
    cr_assert_eq(slow->read().body, "later");
}

Test(content_server, a_lost_reply_is_a_500_and_the_connection_lives) {
    start();
    auto c = connect_tcp();
    c->send(get("/async/lost") + get("/hello"));
    auto r = c->read();
    cr_assert_eq(r.status, 500, "%s", show(r));
    cr_assert_eq(c->read().body, "hi\n");
}

Test(content_server, client_leaving_while_awaiting) {
    start();
    for (const char* target : {"/async/later?ms=200", "/async/thread?ms=200"}) {
        auto c = connect_tcp();
        c->send(get(target));
        usleep(20 * 1000);
        c.reset(); // gone before the answer
    }
    // A client half-closing after its request still gets the answer, then the close.
    auto h = connect_tcp();
    h->send(get("/async/later?ms=100"));
    shutdown(h->fd, SHUT_WR);
    cr_assert_eq(h->read().body, "later");
    cr_assert(h->closed_within(2));
    usleep(300 * 1000); // the replies for the departed clients have come and gone
    cr_assert_eq(exchange(get("/hello")).body, "hi\n");
}

Test(content_server, async_route_with_a_body_and_expect_continue) {
    start();
    auto c = connect_tcp();
    c->send("POST /async/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            "Expect: 100-continue\r\n\r\n");
    auto interim = c->read();
    cr_assert_eq(interim.status, 100, "no interim 100: %s", show(interim));
    c->send("hello");
    auto r = c->read();
    cr_assert_eq(r.body, "len=5", "%s", show(r));
    // A body sent along with the head gets no 100.
    c->send("POST /async/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
            "Expect: 100-continue\r\n\r\nab");
    r = c->read();
    cr_assert_eq(r.status, 200, "%s", show(r));
    cr_assert_eq(r.body, "len=2");
}

Test(content_server, client_address_peer_and_target) {
    start();
    auto r = exchange(get("/who?a=%41&b"));
    cr_assert_eq(r.body, "127.0.0.1|/who?a=%41&b|-", "%s", r.body.c_str());
    auto u = connect_unix();
    u->send(get("/who"));
    r = u->read();
    cr_assert_eq(r.body, "|/who|" + std::to_string(getuid()), "%s", r.body.c_str());
}

Test(content_server, upgrade_hands_the_socket_over) {
    start();
    auto c = connect_tcp();
    c->send("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nEARLY");
    auto r = c->read();
    cr_assert_eq(r.status, 101, "%s", show(r));
    cr_assert_eq(r.header("Connection").value_or(""), "Upgrade", "%s", show(r));
    cr_assert_eq(r.header("Upgrade").value_or(""), "test");
    cr_assert(!r.header("Content-Length").has_value(), "%s", show(r));
    while (c->buf.find(';') == std::string::npos && c->receive(2)) {
    }
    cr_assert_eq(c->buf, "early=EARLY;", "%s", c->buf.c_str());
    cr_assert(!c->closed_within(0.3), "the handed-over connection was closed");
    // Dropped by its owner: closed.
    auto d = connect_tcp();
    d->send("GET /ws?drop=1 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n");
    cr_assert_eq(d->read().status, 101);
    cr_assert(d->closed_within(2), "a dropped Upgraded left the connection open");
    cr_assert_eq(d->buf, "early=;");
    // A 101 to a request that asked for no switch is refused, not half-done.
    auto e = exchange(get("/ws"));
    cr_assert_eq(e.status, 500, "%s", show(e));
    // Stopping the server revokes what it handed over, and the client sees the close.
    g_fx->server_stop_and_wait();
    cr_assert_eq(g_fx->revoked.load(), 1);
    cr_assert(c->closed_within(2), "a revoked connection stayed open");
}

Test(content_server, big_literal_body_survives_partial_sends) {
    start();
    auto c = connect_tcp();
    int small = 65536; // (4 KiB windows crawl on loopback, whatever the server does)
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    c->send(get("/big-literal") + get("/hello"));
    usleep(200 * 1000); // the server fills the socket and waits for it to drain
    auto r = c->read();
    cr_assert(r.complete, "%s", show(r));
    cr_assert(r.body == pattern("L", 0, 3 << 20), "the body arrived altered");
    cr_assert_eq(c->read().body, "hi\n", "the next answer after a parted body");
}

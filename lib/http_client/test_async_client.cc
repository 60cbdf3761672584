#include "http_client/async_client.hh"
#include "http_client/test_server.hh"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <criterion/criterion.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace strata::http_client;
using namespace strata::http_client::testing;
using namespace std::chrono_literals;

namespace {

// Criterion aborts a failed test with longjmp, so cleanup lives in .fini, not in destructors.
struct Fixture {
    TempDir dir;
    std::unique_ptr<TestServer> unix_server = TestServer::unix_socket(dir.path() + "/d.sock");
    std::unique_ptr<TestServer> tcp_server = TestServer::tcp();
    uv_loop_t loop;
    int closed_port_fd = -1;
    Fixture() { uv_loop_init(&loop); }
    ~Fixture() {
        if (closed_port_fd >= 0) ::close(closed_port_fd);
        uv_run(&loop, UV_RUN_NOWAIT); // lets closing handles finish
        uv_loop_close(&loop);
    }
};
Fixture* fx;

void setup() {
    fx = new Fixture;
}
void teardown() {
    delete fx;
    fx = nullptr;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// uv_run until no active handles are left; fails the test if that takes over 10 s. The
// watchdog is unref'd, so returning proves the client itself lets the loop finish.
void run_loop() {
    uv_timer_t watchdog;
    bool fired = false;
    uv_timer_init(&fx->loop, &watchdog);
    watchdog.data = &fired;
    uv_timer_start(
        &watchdog,
        [](uv_timer_t* t) {
            *static_cast<bool*>(t->data) = true;
            uv_stop(t->loop);
        },
        10000, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog));
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    cr_assert_not(fired, "loop still busy after 10 s");
}

} // namespace

TestSuite(async_client, .init = setup, .fini = teardown, .timeout = 20);

Test(async_client, concurrent_requests_on_one_loop) {
    for (auto* server : {fx->unix_server.get(), fx->tcp_server.get()}) {
        Options o;
        o.max_connections = 8;
        AsyncClient c(&fx->loop, server->target(), o);
        int done = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 8; ++i) {
            c.get("/slow?ms=300", [&](Result r) {
                cr_assert_not(r.error.has_value(), "%s", r.error ? r.error->what() : "");
                cr_assert_eq(r.response.body, "slow");
                done++;
            });
        }
        for (int i = 0; i < 4; ++i) {
            c.post_json("/echo", {{"i", i}}, [&, i](Result r) {
                cr_assert_not(r.error.has_value(), "%s", r.error ? r.error->what() : "");
                cr_assert_eq(r.response.headers.get("x-content-type").value_or(""),
                             "application/json");
                cr_assert_eq(r.response.json()["i"], i);
                done++;
            });
        }
        cr_assert_eq(done, 0, "callbacks never run inside request()");
        cr_assert_eq(c.pending(), 12u);
        run_loop();
        double took = seconds_since(t0);
        cr_assert_eq(done, 12);
        cr_assert_eq(c.pending(), 0u);
        // 8 x 300 ms in parallel, not 2.4 s in a row.
        cr_assert_lt(took, 1.5, "%s: took %.3f s", server->target().c_str(), took);
        cr_assert_leq(server->connections(), 8);
    }
}

// request(const Request&) leaves the caller's request as it was (a proxy that may retry
// sends the same one again) and still sends its headers and body.
Test(async_client, a_request_given_by_reference_can_be_sent_again) {
    AsyncClient c(&fx->loop, fx->tcp_server->target());
    Request req;
    req.method = "POST";
    req.path = "/echo";
    req.headers.add("Content-Type", "application/json");
    req.body = R"({"i":7})";
    const Request& same = req;
    int done = 0;
    for (int i = 0; i < 2; ++i)
        c.request(same, [&](Result r) {
            cr_assert_not(r.error.has_value(), "%s", r.error ? r.error->what() : "");
            cr_assert_eq(r.response.headers.get("x-content-type").value_or(""), "application/json");
            cr_assert_eq(r.response.json()["i"], 7);
            done++;
        });
    run_loop();
    cr_assert_eq(done, 2);
    cr_assert_eq(req.headers.get("content-type").value_or(""), "application/json");
    cr_assert_eq(req.body, R"({"i":7})");
}

Test(async_client, connections_are_limited_and_reused) {
    Options o;
    o.max_connections = 2;
    AsyncClient c(&fx->loop, fx->unix_server->target(), o);
    int done = 0;
    for (int i = 0; i < 10; ++i) {
        c.request({"POST", "/echo", {}, std::to_string(i)}, [&, i](Result r) {
            cr_assert_eq(r.value().body, std::to_string(i));
            done++;
        });
    }
    run_loop();
    cr_assert_eq(done, 10);
    cr_assert_leq(fx->unix_server->connections(), 2);

    // Sequential chain: each callback starts the next request; one connection serves them all.
    AsyncClient seq(&fx->loop, fx->tcp_server->target());
    int left = 20;
    std::function<void(Result)> next = [&](Result r) {
        cr_assert_eq(r.value().status, 200);
        if (--left > 0) seq.get("/echo", next);
    };
    seq.get("/echo", next);
    run_loop();
    cr_assert_eq(left, 0);
    cr_assert_eq(fx->tcp_server->requests(), 20);
    cr_assert_eq(fx->tcp_server->connections(), 1);
}

Test(async_client, timeout) {
    AsyncClient c(&fx->loop, fx->tcp_server->target());
    std::optional<Result> slow, fast;
    auto t0 = std::chrono::steady_clock::now();
    c.request({"GET", "/slow?ms=5000", {}, {}, 200ms}, [&](Result r) { slow = std::move(r); });
    c.get("/slow?ms=50", [&](Result r) { fast = std::move(r); });
    run_loop();
    double took = seconds_since(t0);
    cr_assert(slow && slow->error.has_value());
    cr_assert_eq(slow->error->kind(), ErrorKind::timeout, "%s", slow->error->what());
    cr_assert(fast && !fast->error && fast->response.body == "slow");
    cr_assert(took >= 0.19 && took < 2.0, "took %.3f s", took);
}

Test(async_client, daemon_down_errors) {
    std::string stale = fx->dir.path() + "/stale.sock";
    make_stale_socket(stale);
    int port = 0;
    fx->closed_port_fd = reserve_closed_port(&port);

    AsyncClient missing(&fx->loop, "unix:" + fx->dir.path() + "/absent.sock");
    AsyncClient refused(&fx->loop, "unix:" + stale);
    AsyncClient tcp_refused(&fx->loop, "http://127.0.0.1:" + std::to_string(port));
    std::optional<Error> e1, e2, e3;
    missing.get("/healthz", [&](Result r) { e1 = r.error; });
    refused.get("/healthz", [&](Result r) { e2 = r.error; });
    tcp_refused.get("/healthz", [&](Result r) { e3 = r.error; });
    run_loop();
    cr_assert(e1 && e2 && e3);
    cr_assert_eq(e1->kind(), ErrorKind::not_found, "%s", e1->what());
    cr_assert_eq(e2->kind(), ErrorKind::refused, "%s", e2->what());
    cr_assert_eq(e3->kind(), ErrorKind::refused, "%s", e3->what());
    cr_assert(e1->daemon_down() && e2->daemon_down() && e3->daemon_down());
}

Test(async_client, big_body) {
    AsyncClient c(&fx->loop, fx->unix_server->target());
    std::string got;
    c.get("/big?bytes=4194304", [&](Result r) { got = std::move(r.value().body); });
    run_loop();
    cr_assert_eq(got.size(), 4194304u);
    cr_assert_eq(got[4194303], char('a' + 4194303 % 26));
}

Test(async_client, destroying_cancels_pending_and_releases_handles) {
    auto* c = new AsyncClient(&fx->loop, fx->unix_server->target());
    std::optional<Result> first, late;
    bool started_late = false;
    c->get("/slow?ms=5000", [&](Result r) {
        first = std::move(r);
        // A callback may still issue requests while the client closes: they are cancelled too.
        c->get("/echo", [&](Result r2) { late = std::move(r2); });
        started_late = true;
    });
    // Let the request reach the server, then close the client under it.
    uv_timer_t t;
    uv_timer_init(&fx->loop, &t);
    t.data = &c;
    uv_timer_start(
        &t,
        [](uv_timer_t* h) {
            auto** client = static_cast<AsyncClient**>(h->data);
            delete *client;
            *client = nullptr;
            uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
        },
        100, 0);
    auto t0 = std::chrono::steady_clock::now();
    run_loop();
    cr_assert_lt(seconds_since(t0), 1.0);
    cr_assert(started_late);
    cr_assert(first && first->error && first->error->kind() == ErrorKind::cancelled);
    cr_assert(late && late->error && late->error->kind() == ErrorKind::cancelled);
    cr_assert_eq(uv_loop_close(&fx->loop), 0, "every libuv handle was closed");
    uv_loop_init(&fx->loop);
}

Test(async_client, callback_may_destroy_the_client) {
    auto* c = new AsyncClient(&fx->loop, fx->tcp_server->target());
    int done = 0;
    c->get("/echo", [&](Result r) {
        cr_assert_eq(r.value().status, 200);
        done++;
        delete c; // the other request still in flight is cancelled
        c = nullptr;
    });
    c->get("/slow?ms=3000", [&](Result r) {
        cr_assert_eq(r.error->kind(), ErrorKind::cancelled);
        done++;
    });
    run_loop();
    cr_assert_eq(done, 2);
    cr_assert_eq(uv_loop_close(&fx->loop), 0);
    uv_loop_init(&fx->loop);
}

Test(async_client, invalid_request_throws_at_once) {
    AsyncClient c(&fx->loop, fx->unix_server->target());
    bool called = false;
    try {
        c.get("relative", [&](Result) { called = true; });
        cr_assert_fail("no exception");
    } catch (const Error& e) {
        cr_assert_eq(e.kind(), ErrorKind::invalid_argument);
    }
    run_loop();
    cr_assert_not(called);
    cr_assert_eq(c.pending(), 0u);
}

namespace {

// A raw TCP server on 127.0.0.1 for what libmicrohttpd will not send: it reads each request
// head and writes the next scripted answer byte for byte, then closes the connection when
// close_after_each says so (without announcing it, like a server whose keep-alive timed out).
class ScriptedServer {
public:
    ScriptedServer(std::vector<std::string> answers, bool close_after_each)
        : answers_(std::move(answers)), close_after_each_(close_after_each) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        cr_assert_eq(::listen(fd_, 16), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        target_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    const std::string& target() const { return target_; }
    int connections() const { return connections_.load(); }

private:
    void serve() {
        std::size_t next = 0;
        while (next < answers_.size()) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            ++connections_;
            std::string in;
            char buf[4096];
            while (next < answers_.size()) {
                auto end = in.find("\r\n\r\n");
                if (end == std::string::npos) {
                    ssize_t n = ::recv(c, buf, sizeof buf, 0);
                    if (n <= 0) break;
                    in.append(buf, static_cast<std::size_t>(n));
                    continue;
                }
                in.erase(0, end + 4);
                const std::string& out = answers_[next++];
                (void)!::send(c, out.data(), out.size(), MSG_NOSIGNAL);
                if (close_after_each_) break;
            }
            ::close(c);
        }
    }

    std::vector<std::string> answers_;
    bool close_after_each_;
    int fd_ = -1;
    std::string target_;
    std::atomic<int> connections_{0};
    std::thread thread_;
};

} // namespace

Test(async_client, chunked_head_and_close_delimited_answers) {
    ScriptedServer s({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", // to a HEAD
                      "HTTP/1.1 200 OK\r\n\r\nto the end"},
                     false);
    AsyncClient c(&fx->loop, s.target());
    std::vector<Result> got;
    std::function<void(Result)> next = [&](Result r) {
        got.push_back(std::move(r));
        if (got.size() == 1) c.request({"HEAD", "/h", {}, {}}, next);
        if (got.size() == 2) c.get("/c", next);
    };
    c.get("/a", next);
    run_loop();
    cr_assert_eq(got.size(), 3u);
    for (auto& r : got)
        cr_assert_not(r.error.has_value(), "%s", r.error ? r.error->what() : "");
    cr_assert_eq(got[0].response.body, "abc");
    cr_assert_eq(got[1].response.body, "");
    cr_assert_eq(got[2].response.body, "to the end");
    cr_assert_eq(s.connections(), 1, "the chunked and HEAD answers kept the connection");
}

Test(async_client, a_kept_connection_closed_by_the_peer_is_replaced) {
    ScriptedServer s({"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\none",
                      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo"},
                     true);
    AsyncClient c(&fx->loop, s.target());
    std::vector<Result> got;
    // The second request goes out on the kept connection before its close is seen.
    c.get("/1", [&](Result r) {
        got.push_back(std::move(r));
        c.get("/2", [&](Result r2) { got.push_back(std::move(r2)); });
    });
    run_loop();
    cr_assert_eq(got.size(), 2u);
    cr_assert_not(got[1].error.has_value(), "%s", got[1].error ? got[1].error->what() : "");
    cr_assert_eq(got[1].response.body, "two");
    cr_assert_eq(s.connections(), 2);
}

Test(async_client, malformed_and_oversized_answers) {
    ScriptedServer s({"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
                      "HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n", "nonsense\r\n\r\n"},
                     true);
    Options o;
    o.max_response_bytes = 1024;
    AsyncClient c(&fx->loop, s.target(), o);
    std::vector<Result> got;
    std::function<void(Result)> next = [&](Result r) {
        got.push_back(std::move(r));
        if (got.size() < 3) c.get("/", next);
    };
    c.get("/", next);
    run_loop();
    cr_assert_eq(got.size(), 3u);
    cr_assert(got[0].error && got[0].error->kind() == ErrorKind::bad_response);
    cr_assert(got[1].error && got[1].error->kind() == ErrorKind::too_large);
    cr_assert(got[2].error && got[2].error->kind() == ErrorKind::bad_response);
}

Test(async_client, streamed_upload_and_sink) {
    AsyncClient c(&fx->loop, fx->tcp_server->target());
    std::string sent(300000, 'u');
    std::size_t offset = 0;
    Request up{"POST", "/echo", {}, {}};
    up.body_size = sent.size();
    up.body_source = [&](char* buf, std::size_t cap) -> long {
        std::size_t n = std::min(cap, sent.size() - offset);
        std::memcpy(buf, sent.data() + offset, n);
        offset += n;
        return static_cast<long>(n);
    };
    std::string sunk;
    up.body_sink = [&](std::string_view piece) {
        sunk.append(piece);
        return true;
    };
    std::optional<Result> got;
    c.request(std::move(up), [&](Result r) { got = std::move(r); });
    run_loop();
    cr_assert(got && !got->error, "%s", got && got->error ? got->error->what() : "");
    cr_assert_eq(got->response.body, "");
    cr_assert_eq(sunk.size(), sent.size());
    cr_assert(sunk == sent);
}

#include "http_client/client.hh"
#include "http_client/test_server.hh"

#include <chrono>
#include <criterion/criterion.h>
#include <sys/stat.h>
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
    int closed_port_fd = -1;
    ~Fixture() {
        if (closed_port_fd >= 0) ::close(closed_port_fd);
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

template <class F>
std::optional<Error> error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e;
    }
    return std::nullopt;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void get_and_post(const std::string& target) {
    Client c(target);
    Response r = c.get("/echo");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.headers.get("x-method").value_or(""), "GET");
    cr_assert_eq(r.headers.get("X-PATH").value_or(""), "/echo");
    cr_assert_eq(r.body, "");

    r = c.post_json("/echo", {{"name", "ünïcode"}, {"n", 3}});
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.headers.get("X-Method").value_or(""), "POST");
    cr_assert_eq(r.headers.get("X-Content-Type").value_or(""), "application/json");
    cr_assert_eq(r.json()["name"], "ünïcode");
    cr_assert_eq(r.json()["n"], 3);

    r = c.request("PUT", "/echo", {{"X-Test", "hello"}}, "put body", 5s);
    cr_assert_eq(r.headers.get("X-Method").value_or(""), "PUT");
    cr_assert_eq(r.headers.get("X-Echo").value_or(""), "hello");
    cr_assert_eq(r.body, "put body");

    for (const char* m : {"DELETE", "PATCH", "OPTIONS"}) {
        r = c.request(m, "/echo");
        cr_assert_eq(r.headers.get("X-Method").value_or(""), std::string(m));
    }
    r = c.request("HEAD", "/big?bytes=100");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body, "");
    cr_assert_eq(r.headers.get("content-length").value_or(""), "100");

    r = c.get("/json");
    cr_assert(r.ok());
    cr_assert_eq(r.json(), nlohmann::json({{"hello", "world"}}));
}

} // namespace

TestSuite(http_client, .init = setup, .fini = teardown, .timeout = 20);

Test(http_client, target_parsing) {
    Target u = Target::parse("unix:/run/strata/metad.sock");
    cr_assert(u.is_unix());
    cr_assert_eq(u.socket_path(), "/run/strata/metad.sock");
    cr_assert_eq(u.url("/v1/status"), "http://localhost/v1/status");
    cr_assert_eq(Target::parse("/run/x.sock").socket_path(), "/run/x.sock");
    Target t = Target::parse("http://127.0.0.1:8080/");
    cr_assert_not(t.is_unix());
    cr_assert_eq(t.url("/healthz"), "http://127.0.0.1:8080/healthz");
    cr_assert_eq(Target::parse("http://[::1]:80/api").url("/x"), "http://[::1]:80/api/x");
    for (const char* bad : {"", "unix:", "https://x", "ftp://x", "http://", "http://a b",
                            "metad.sock", "http://u@h:1", "http://h:1/?q"}) {
        auto e = error_of([&] { Target::parse(bad); });
        cr_assert(e.has_value(), "accepted \"%s\"", bad);
        cr_assert_eq(e->kind(), ErrorKind::invalid_argument);
    }
    std::string too_long = "unix:/" + std::string(200, 'x');
    cr_assert(error_of([&] { Target::parse(too_long); }).has_value());
    cr_assert(error_of([&] { Client c("nope"); }).has_value());
}

Test(http_client, get_and_post_over_unix_socket) {
    get_and_post(fx->unix_server->target());
}

Test(http_client, get_and_post_over_tcp) {
    get_and_post(fx->tcp_server->target());
}

Test(http_client, statuses_are_responses_not_errors) {
    Client c(fx->unix_server->target());
    Response r = c.get("/status?code=503");
    cr_assert_eq(r.status, 503);
    cr_assert_not(r.ok());
    r = c.get("/nowhere");
    cr_assert_eq(r.status, 404);
    cr_assert_eq(r.json()["error"]["code"], "not_found");
    auto e = error_of([&] { c.get("/status?code=200").json(); });
    cr_assert(e.has_value());
    cr_assert_eq(e->kind(), ErrorKind::bad_response);
}

Test(http_client, keep_alive_reuses_one_connection) {
    for (auto* server : {fx->unix_server.get(), fx->tcp_server.get()}) {
        Client c(server->target());
        for (int i = 0; i < 20; ++i) {
            Response r = i % 2 ? c.get("/echo") : c.post_json("/echo", {{"i", i}});
            cr_assert_eq(r.status, 200);
        }
        cr_assert_eq(server->requests(), 20);
        cr_assert_eq(server->connections(), 1, "%s: %d connections for 20 requests",
                     server->target().c_str(), server->connections());
    }
}

Test(http_client, server_closing_the_connection_is_handled) {
    Client c(fx->tcp_server->target());
    cr_assert_eq(c.get("/close").body, "bye");
    cr_assert_eq(c.get("/echo").status, 200);
    cr_assert_eq(c.get("/echo").status, 200);
    cr_assert_eq(fx->tcp_server->connections(), 2);
}

Test(http_client, reconnects_after_server_restart) {
    std::string path = fx->dir.path() + "/d.sock";
    Client c("unix:" + path);
    cr_assert_eq(c.get("/echo").status, 200);
    fx->unix_server.reset(); // the daemon restarts: the pooled connection is now dead
    fx->unix_server = TestServer::unix_socket(path);
    cr_assert_eq(c.get("/echo").status, 200);
    cr_assert_eq(fx->unix_server->connections(), 1);
}

Test(http_client, concurrent_callers_share_the_pool) {
    Options o;
    o.max_connections = 4;
    Client c(fx->tcp_server->target(), o);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                Result r = c.try_request({"POST", "/echo", {}, std::to_string(t * 100 + i)});
                if (!r.error && r.response.body == std::to_string(t * 100 + i)) ok++;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    cr_assert_eq(ok.load(), 100);
    cr_assert_leq(fx->tcp_server->connections(), 4);
}

Test(http_client, big_body_and_size_limit) {
    Client c(fx->unix_server->target());
    Response r = c.get("/big?bytes=8388608");
    cr_assert_eq(r.body.size(), 8388608u);
    cr_assert_eq(r.body.substr(0, 3), "abc");
    cr_assert_eq(r.body[8388607], char('a' + 8388607 % 26));

    std::string upload(3 << 20, 'u');
    cr_assert_eq(c.request("POST", "/echo", {}, upload).body, upload);

    Options o;
    o.max_response_bytes = 1000;
    Client small(fx->unix_server->target(), o);
    cr_assert_eq(small.get("/big?bytes=1000").body.size(), 1000u);
    auto e = error_of([&] { small.get("/big?bytes=1001"); });
    cr_assert(e.has_value());
    cr_assert_eq(e->kind(), ErrorKind::too_large, "%s", e->what());
    cr_assert_eq(small.get("/echo").status, 200, "client still usable");
}

Test(http_client, timeout_is_its_own_error) {
    for (auto* server : {fx->unix_server.get(), fx->tcp_server.get()}) {
        Client c(server->target());
        auto t0 = std::chrono::steady_clock::now();
        auto e = error_of([&] { c.request("GET", "/slow?ms=5000", {}, {}, 200ms); });
        double took = seconds_since(t0);
        cr_assert(e.has_value());
        cr_assert_eq(e->kind(), ErrorKind::timeout, "%s", e->what());
        cr_assert_not(e->daemon_down());
        cr_assert(took >= 0.19 && took < 2.0, "took %.3f s", took);
        cr_assert(std::string(e->what()).find("GET /slow?ms=5000 on ") == 0, "%s", e->what());
        // Default timeout from Options, and the client keeps working afterwards.
        Options o;
        o.timeout = 150ms;
        Client quick(server->target(), o);
        cr_assert_eq(error_of([&] { quick.get("/slow?ms=5000"); })->kind(), ErrorKind::timeout);
        cr_assert_eq(quick.get("/slow?ms=10").body, "slow");
    }
}

Test(http_client, missing_socket_is_not_found) {
    Client c("unix:" + fx->dir.path() + "/absent.sock");
    auto t0 = std::chrono::steady_clock::now();
    auto e = error_of([&] { c.get("/healthz"); });
    cr_assert(e.has_value());
    cr_assert_eq(e->kind(), ErrorKind::not_found, "%s", e->what());
    cr_assert(e->daemon_down());
    cr_assert_lt(seconds_since(t0), 1.0);
    Result r = c.try_request({"GET", "/healthz"});
    cr_assert(r.error.has_value());
    cr_assert_eq(r.error->kind(), ErrorKind::not_found);
}

Test(http_client, stale_socket_and_closed_port_are_refused) {
    std::string stale = fx->dir.path() + "/stale.sock";
    make_stale_socket(stale);
    auto e = error_of([&] { Client("unix:" + stale).get("/healthz"); });
    cr_assert(e.has_value());
    cr_assert_eq(e->kind(), ErrorKind::refused, "%s", e->what());
    cr_assert(e->daemon_down());

    int port = 0;
    fx->closed_port_fd = reserve_closed_port(&port);
    e = error_of([&] { Client("http://127.0.0.1:" + std::to_string(port)).get("/healthz"); });
    cr_assert(e.has_value());
    cr_assert_eq(e->kind(), ErrorKind::refused, "%s", e->what());
}

Test(http_client, socket_without_permission) {
    if (::geteuid() == 0) {
        teardown(); // skipping does not run .fini
        cr_skip_test("root ignores file permissions");
    }
    std::string sub = fx->dir.path() + "/locked";
    ::mkdir(sub.c_str(), 0700);
    auto server = TestServer::unix_socket(sub + "/d.sock");
    ::chmod(sub.c_str(), 0);
    auto e = error_of([&] { Client("unix:" + sub + "/d.sock").get("/healthz"); });
    ::chmod(sub.c_str(), 0700);
    cr_assert(e.has_value());
    cr_assert_eq(e->kind(), ErrorKind::permission_denied, "%s", e->what());
}

Test(http_client, invalid_requests_are_rejected_before_sending) {
    Client c(fx->unix_server->target());
    for (Request bad :
         {Request{"GET", "no-slash"}, Request{"GET", "/a b"}, Request{"G T", "/echo"},
          Request{"", "/echo"}, Request{"GET", "/echo", {{"X-Bad", "a\r\nInjected: 1"}}},
          Request{"GET", "/echo", {{"Bad Name", "x"}}}}) {
        Result r = c.try_request(bad);
        cr_assert(r.error.has_value(), "%s %s accepted", bad.method.c_str(), bad.path.c_str());
        cr_assert_eq(r.error->kind(), ErrorKind::invalid_argument);
    }
    cr_assert_eq(fx->unix_server->requests(), 0);
    cr_assert(error_of([&] { c.request("GET", "relative"); }).has_value());
}

Test(http_client, request_headers_are_sent) {
    Client c(fx->tcp_server->target());
    Headers h{{"x-test", "one"}};
    h.set("X-Test", "two"); // set() replaces regardless of case
    cr_assert_eq(h.size(), 1u);
    Response r = c.request("GET", "/echo", h);
    cr_assert_eq(r.headers.get("x-echo").value_or(""), "two");
    cr_assert(r.headers.contains("Content-Length"));
    cr_assert_not(r.headers.contains("X-Nothing"));
}

Test(http_client, streamed_request_body) {
    Client c(fx->unix_server->target());
    // 5 MiB from a source that hands out odd-sized pieces: what arrives is the same bytes,
    // sent with the method asked for (not curl's PUT for uploads).
    const std::size_t total = (5 << 20) + 7;
    std::size_t sent = 0;
    Request req;
    req.method = "POST";
    req.path = "/echo";
    req.body_size = total;
    req.body_source = [&](char* buf, std::size_t cap) -> long {
        std::size_t n = std::min({cap, total - sent, std::size_t{12345}});
        for (std::size_t i = 0; i < n; ++i)
            buf[i] = char('a' + (sent + i) % 26);
        sent += n;
        return static_cast<long>(n);
    };
    Response r = c.request(std::move(req));
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.headers.get("X-Method").value_or(""), "POST");
    cr_assert_eq(r.body.size(), total);
    cr_assert_eq(r.body[total - 1], char('a' + (total - 1) % 26));
    cr_assert_eq(r.body[12345], char('a' + 12345 % 26));

    // A source that fails aborts the transfer: an error, not a truncated request.
    Request bad;
    bad.method = "POST";
    bad.path = "/echo";
    bad.body_size = 100;
    bad.body_source = [](char*, std::size_t) -> long { return -1; };
    auto e = error_of([&] { c.request(std::move(bad)); });
    cr_assert(e.has_value(), "an aborted upload is an error");
    cr_assert_eq(c.get("/echo").status, 200, "client still usable");
}

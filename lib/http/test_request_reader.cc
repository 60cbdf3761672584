// RequestReader and parse_target on their own: bytes in, requests or errors out, no sockets.
#include "http/request_reader.hh"
#include "http/target.hh"

#include <criterion/criterion.h>
#include <string>
#include <string_view>

using namespace strata;
using State = http::RequestReader::State;

namespace {

constexpr std::size_t kHead = 8192;
constexpr std::size_t kBody = 1000;

// Feeds everything (in one call) and expects it all consumed.
State feed_all(http::RequestReader& r, std::string_view data) {
    std::size_t n = r.feed(data);
    if (r.state() == State::need_more) cr_assert_eq(n, data.size());
    return r.state();
}

// Feeds data and expects an error with this status.
void expect_error(std::string_view data, int status, std::size_t max_head = kHead,
                  std::size_t max_body = kBody) {
    http::RequestReader r(max_head, max_body);
    r.feed(data);
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::error), "%.*s",
                 static_cast<int>(std::min<std::size_t>(data.size(), 200)), data.data());
    cr_assert_eq(r.error_status(), status, "got %d (%s) for %.*s", r.error_status(),
                 r.error_message().c_str(),
                 static_cast<int>(std::min<std::size_t>(data.size(), 200)), data.data());
    cr_assert(!r.error_message().empty());
}

http::Request parse_one(std::string_view data) {
    http::RequestReader r(kHead, kBody);
    cr_assert_eq(static_cast<int>(feed_all(r, data)), static_cast<int>(State::complete), "%s: %s",
                 std::string(data).c_str(), r.error_message().c_str());
    return r.take();
}

} // namespace

Test(request_reader, simple_get) {
    http::RequestReader r(kHead, kBody);
    std::string req = "GET /hello?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
    cr_assert_eq(r.feed(req), req.size());
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete));
    cr_assert(!r.mid_request());
    cr_assert(r.keep_alive());
    auto q = r.take();
    cr_assert_eq(q.method, "GET");
    cr_assert_eq(q.path, "/hello");
    cr_assert_eq(q.version, "HTTP/1.1");
    cr_assert_eq(q.query.size(), 1u);
    cr_assert_eq(q.query.find("x")->second, "1");
    cr_assert_eq(q.header("host").value_or(""), "example");
    cr_assert_eq(q.header("Accept").value_or(""), "*/*");
    cr_assert(q.body.empty());
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::need_more));
}

Test(request_reader, byte_by_byte) {
    std::string req = "POST /up HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: some value here\r\n"
                      "X-Empty:\r\nContent-Length: 5\r\n\r\nhello";
    // A tight header limit: counting must not depend on how the bytes were split.
    http::RequestReader r(req.size() - 5, kBody);
    for (std::size_t i = 0; i < req.size(); ++i) {
        cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::need_more),
                     "byte %zu: %d %s", i, r.error_status(), r.error_message().c_str());
        cr_assert_eq(r.feed(std::string_view(req).substr(i, 1)), 1u, "byte %zu", i);
        if (i + 1 < req.size()) cr_assert(r.mid_request(), "byte %zu", i);
    }
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete), "%s",
                 r.error_message().c_str());
    cr_assert(!r.mid_request());
    auto q = r.take();
    cr_assert_eq(q.method, "POST");
    cr_assert_eq(q.path, "/up");
    cr_assert_eq(q.headers.size(), 4u);
    cr_assert_eq(q.header("X-Long-Header-Name").value_or(""), "some value here");
    cr_assert_eq(q.header("X-Empty").value_or("missing"), "");
    cr_assert_eq(q.header("Host").value_or(""), "h");
    cr_assert_eq(q.body, "hello");
}

Test(request_reader, empty_header_value_does_not_merge_fields) {
    auto q = parse_one("GET / HTTP/1.1\r\nX-A:\r\nHost: h\r\nX-B: \r\n\r\n");
    cr_assert_eq(q.headers.size(), 3u);
    cr_assert_eq(q.header("X-A").value_or("missing"), "");
    cr_assert_eq(q.header("X-B").value_or("missing"), "");
    cr_assert_eq(q.header("Host").value_or(""), "h");
}

Test(request_reader, pipelined_in_order) {
    std::string all;
    for (int i = 0; i < 4; ++i)
        all += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    all += "POST /r4 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    all += "GET /r5 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    http::RequestReader r(kHead, kBody);
    std::string_view rest = all;
    for (int i = 0; i < 6; ++i) {
        std::size_t n = r.feed(rest);
        cr_assert_gt(n, 0u);
        cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete), "%d: %s", i,
                     r.error_message().c_str());
        // Nothing more is taken while a request waits.
        cr_assert_eq(r.feed(rest.substr(n)), 0u);
        rest.remove_prefix(n);
        cr_assert_eq(r.keep_alive(), i != 5, "request %d", i);
        auto q = r.take();
        cr_assert_eq(q.path, "/r" + std::to_string(i));
        cr_assert_eq(q.body, i == 4 ? "abc" : "");
    }
    cr_assert(rest.empty());
}

Test(request_reader, every_split_gives_the_same_requests) {
    std::string all = "\r\nGET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"
                      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
                      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
                      "HEAD /d HTTP/1.0\r\n\r\n";
    const char* paths[] = {"/a", "/b", "/c", "/d"};
    const char* bodies[] = {"", "body", "abcde", ""};
    for (std::size_t step = 1; step <= all.size(); ++step) {
        // A small header limit that the whole sequence would exceed: it is per request.
        http::RequestReader r(80, kBody);
        std::string pending; // given, not yet consumed
        std::size_t next = 0, given = 0;
        while (next < 4) {
            if (given < all.size()) { // the next `step` bytes arrive
                pending += all.substr(given, step);
                given = std::min(all.size(), given + step);
            } else {
                cr_assert(!pending.empty(), "step %zu: ran out after %zu requests", step, next);
            }
            std::size_t n = r.feed(pending);
            cr_assert_leq(n, pending.size());
            pending.erase(0, n);
            if (r.state() == State::error)
                cr_assert_fail("step %zu, request %zu: %s", step, next, r.error_message().c_str());
            if (r.state() != State::complete) continue;
            auto q = r.take();
            cr_assert_eq(q.path, paths[next], "step %zu", step);
            cr_assert_eq(q.body, bodies[next], "step %zu", step);
            cr_assert_eq(r.keep_alive(), next < 3);
            ++next;
        }
        cr_assert(pending.empty() && given == all.size(), "step %zu", step);
    }
}

Test(request_reader, keep_alive_rules) {
    struct Case {
        const char* req;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
    };
    for (const auto& c : cases) {
        http::RequestReader r(kHead, kBody);
        cr_assert_eq(static_cast<int>(feed_all(r, c.req)), static_cast<int>(State::complete), "%s",
                     c.req);
        cr_assert_eq(r.keep_alive(), c.keep, "%s", c.req);
    }
}

Test(request_reader, http10_without_host_is_fine) {
    auto q = parse_one("GET /x HTTP/1.0\r\n\r\n");
    cr_assert_eq(q.version, "HTTP/1.0");
    cr_assert_eq(q.path, "/x");
}

Test(request_reader, content_length_body) {
    auto q = parse_one("PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789");
    cr_assert_eq(q.method, "PUT");
    cr_assert_eq(q.body, "0123456789");
}

Test(request_reader, body_split_over_feeds) {
    http::RequestReader r(kHead, kBody);
    feed_all(r, "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n");
    cr_assert(r.mid_request());
    feed_all(r, "abc");
    cr_assert(r.mid_request());
    cr_assert_eq(static_cast<int>(feed_all(r, "def")), static_cast<int>(State::complete));
    cr_assert_eq(r.take().body, "abcdef");
}

Test(request_reader, chunked_body_is_decoded) {
    std::string req = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n1;ext=1\r\n \r\na\r\n0123456789\r\n0\r\n\r\n"
                      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    http::RequestReader r(kHead, kBody);
    std::size_t n = r.feed(req);
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete), "%s",
                 r.error_message().c_str());
    auto q = r.take();
    cr_assert_eq(q.body, "hello 0123456789");
    cr_assert_eq(r.feed(std::string_view(req).substr(n)), req.size() - n);
    cr_assert_eq(r.take().path, "/next");
}

Test(request_reader, trailers_do_not_become_headers) {
    std::string req = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\nX-Identity: admin\r\nX-Other: 1\r\n\r\n"
                      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    http::RequestReader r(kHead, kBody);
    std::size_t n = r.feed(req);
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete), "%s",
                 r.error_message().c_str());
    auto q = r.take();
    cr_assert_eq(q.body, "abc");
    cr_assert(!q.header("X-Identity"), "a trailer was merged into the checked headers");
    cr_assert(!q.header("X-Other"));
    r.feed(std::string_view(req).substr(n));
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete));
    auto next = r.take();
    cr_assert_eq(next.path, "/next");
    cr_assert_eq(next.headers.size(), 1u, "trailer leaked into the next request");
}

Test(request_reader, body_over_limit_is_413) {
    // Announced by Content-Length: refused before any body byte.
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n", 413);
    // Chunked: refused once the decoded bytes pass the limit.
    std::string chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i)
        chunked += "190\r\n" + std::string(400, 'x') + "\r\n";
    expect_error(chunked, 413);
    // Exactly at the limit is fine.
    http::RequestReader r(kHead, kBody);
    feed_all(r,
             "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'y'));
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::complete));
}

Test(request_reader, body_limit_can_change) {
    http::RequestReader r(kHead, kBody);
    r.set_max_body_bytes(4);
    r.feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    cr_assert_eq(r.error_status(), 413);
}

Test(request_reader, header_over_limit_is_431) {
    expect_error("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431);
    // The request line counts too.
    expect_error("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 431);
    // Beyond http_parser's own 80 KiB ceiling the answer is still 431.
    expect_error("GET /" + std::string(200000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 431, 1 << 20);
    // Many small headers add up.
    std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 1000; ++i)
        many += "X-" + std::to_string(i) + ": v\r\n";
    expect_error(many + "\r\n", 431);
    // And fed in small pieces, the limit is the same.
    http::RequestReader r(kHead, kBody);
    std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
    for (std::size_t i = 0; i < big.size() && r.state() == State::need_more; i += 7)
        r.feed(std::string_view(big).substr(i, 7));
    cr_assert_eq(r.error_status(), 431);
}

Test(request_reader, host_rules) {
    expect_error("GET / HTTP/1.1\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400);
}

Test(request_reader, smuggling_is_refused) {
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
                 "abcd",
                 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400);
    // Whitespace before the colon (RFC 9112 5.1): other parsers may not see a Content-Length.
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", 400);
    expect_error("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\nBad Trailer: x\r\n\r\n",
                 400);
    // A transfer coding other than chunked last: the body length is unknowable.
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n"
                 "\r\nabc",
                 400);
}

Test(request_reader, garbage_is_400) {
    expect_error("GARBAGE\r\n\r\n", 400);
    expect_error(std::string("\0\xff\r\n\r\n", 6), 400);
    expect_error("GET /hello HTTP/1.1 extra\r\nHost: h\r\n\r\n", 400);
    expect_error("GET /hello HTTP/x.y\r\nHost: h\r\n\r\n", 400);
    expect_error("GET hello HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400);
    expect_error("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

Test(request_reader, versions) {
    expect_error("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    expect_error("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
    expect_error("GET / HTTP/3.0\r\n\r\n", 505);
}

// An upgrade request is whole at its head: the route decides (a 101 or an answer then a
// close); the bytes after it are not parsed as HTTP. CONNECT is never served.
Test(request_reader, upgrade_requests_complete_and_connect_is_501) {
    http::RequestReader r(kHead, kBody);
    std::string head = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n";
    std::size_t n = r.feed(head + "\x81\x05hello");
    cr_assert_eq(n, head.size(), "the frame after the head was consumed: %zu", n);
    cr_assert(r.state() == http::RequestReader::State::complete);
    cr_assert(r.upgrade());
    cr_assert_eq(r.take().path, "/ws");
    http::RequestReader plain(kHead, kBody);
    feed_all(plain, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    cr_assert(plain.state() == http::RequestReader::State::complete);
    cr_assert(!plain.upgrade(), "Upgrade without Connection: upgrade is no upgrade request");
    expect_error("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501);
}

// The general server's smuggling checks (head_check.hh) run on this engine's heads too.
Test(request_reader, head_checks_refuse_with_their_answer) {
    const std::pair<std::string, int> cases[] = {
        {"GET /a/../b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.0\r\nHost: h\r\nHost: g\r\n\r\n", 400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
    };
    for (const auto& [bad, status] : cases) {
        http::RequestReader r(kHead, kBody);
        r.feed(bad);
        cr_assert(r.state() == http::RequestReader::State::error, "accepted: %s", bad.c_str());
        cr_assert_eq(r.error_status(), status, "%s -> %d", bad.c_str(), r.error_status());
        cr_assert(r.rejection().has_value(), "%s: no head-check answer", bad.c_str());
        cr_assert_eq(r.rejection()->status, status);
    }
}

// http_parser joins folded lines; the reader refuses them (RFC 9112 5.2), in one feed or
// byte by byte, while an empty value followed by a field stays two fields.
Test(request_reader, obs_fold_is_refused) {
    for (std::string fold : {"X-A: 1\r\n Transfer-Encoding: chunked\r\n", "X-A: 1\r\n\tX-B: 2\r\n",
                             "X-A:\r\n  v\r\n"}) {
        std::string head = "GET / HTTP/1.1\r\nHost: h\r\n" + fold + "\r\n";
        expect_error(head, 400);
        http::RequestReader r(kHead, kBody);
        for (char c : head)
            if (r.state() == http::RequestReader::State::need_more) r.feed(std::string_view(&c, 1));
        cr_assert(r.state() == http::RequestReader::State::error, "byte by byte: %s", fold.c_str());
    }
}

// The interim 100 is due only when a body is still to come, and once.
Test(request_reader, expect_continue_once_when_a_body_follows) {
    http::RequestReader r(kHead, kBody);
    r.feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    cr_assert(r.state() == http::RequestReader::State::need_more);
    cr_assert(r.take_expect_continue());
    cr_assert(!r.take_expect_continue());
    r.feed("abc");
    cr_assert(r.state() == http::RequestReader::State::complete);
    cr_assert_eq(r.take().body, "abc");
    http::RequestReader nobody(kHead, kBody);
    feed_all(nobody, "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
    cr_assert(!nobody.take_expect_continue());
    http::RequestReader old(kHead, kBody);
    old.feed("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    cr_assert(!old.take_expect_continue(), "HTTP/1.0 clients do not wait for a 100");
}

Test(request_reader, mid_request_tracks_partial_heads) {
    http::RequestReader r(kHead, kBody);
    cr_assert(!r.mid_request());
    feed_all(r, "GE");
    cr_assert(r.mid_request());
    feed_all(r, "T / HTTP/1.1\r\nHo");
    cr_assert(r.mid_request());
    feed_all(r, "st: h\r\n\r");
    cr_assert(r.mid_request());
    cr_assert_eq(static_cast<int>(feed_all(r, "\n")), static_cast<int>(State::complete));
    cr_assert(!r.mid_request());
    r.take();
    cr_assert(!r.mid_request());
}

Test(request_reader, error_is_sticky) {
    http::RequestReader r(kHead, kBody);
    r.feed("GARBAGE\r\n\r\n");
    cr_assert_eq(r.error_status(), 400);
    r.take();
    cr_assert_eq(static_cast<int>(r.state()), static_cast<int>(State::error));
    cr_assert_eq(r.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0u);
}

// parse_target

Test(target, decodes_path_and_query) {
    auto t = http::parse_target("/a%20b?x=1&y=a+b&z=%2F&flag");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/a b");
    cr_assert_eq(t->query.size(), 4u);
    cr_assert_eq(t->query.find("x")->second, "1");
    cr_assert_eq(t->query.find("y")->second, "a b");
    cr_assert_eq(t->query.find("z")->second, "/");
    cr_assert_eq(t->query.find("flag")->second, "");
}

Test(target, plus_is_literal_in_the_path) {
    auto t = http::parse_target("/a+b?k%3D=v%3D&&k%3D=2");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/a+b");
    cr_assert_eq(t->query.count("k="), 2u);
    cr_assert_eq(t->query.find("k=")->second, "v=");
}

Test(target, bad_escapes_and_control_chars) {
    for (const char* raw : {"/%zz", "/%2", "/a%", "/%00", "/%0a", "/%0D", "/%7f"})
        cr_assert(!http::parse_target(raw).has_value(), "%s", raw);
    for (const char* raw : {"/?x=%", "/?x=%2", "/?%zz=1", "/?x=%00", "/?x=%0a"}) {
        auto t = http::parse_target(std::string(raw) + "&ok=1");
        cr_assert(t.has_value(), "%s: a bad query argument refused the target", raw);
        cr_assert_eq(t->query.size(), 1u, "%s: the bad argument was kept", raw);
        cr_assert_eq(t->query.begin()->first, "ok");
    }
    cr_assert(!http::percent_decode("%1", false).has_value());
    cr_assert_eq(http::percent_decode("%41%62+", true).value_or(""), "Ab ");
    cr_assert_eq(http::percent_decode("%41%62+", false).value_or(""), "Ab+");
}

Test(target, absolute_form) {
    auto t = http::parse_target("http://h/p?q=1");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/p");
    cr_assert_eq(t->query.find("q")->second, "1");
    t = http::parse_target("http://h");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/");
    t = http::parse_target("HTTPS://h:8080/x%2Fy");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/x/y");
    // An empty path before the query is "/" (RFC 9112 3.2.2: path-abempty).
    t = http::parse_target("http://h?q=2");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/");
    cr_assert_eq(t->query.find("q")->second, "2");
}

Test(target, rejected_forms) {
    for (const char* raw : {"*", "", "p", "example.com:443", "ftp://h/p", "http:/h/p"})
        cr_assert(!http::parse_target(raw).has_value(), "%s", raw);
}

Test(target, fragment_is_dropped) {
    auto t = http::parse_target("/p#frag?x=1");
    cr_assert(t.has_value());
    cr_assert_eq(t->path, "/p");
    cr_assert(t->query.empty(), "a '?' inside the fragment started a query");
    t = http::parse_target("/p?x=1#frag");
    cr_assert(t.has_value());
    cr_assert_eq(t->query.find("x")->second, "1");
}

Test(target, through_the_reader) {
    auto q = parse_one("GET /a%20b?x=1&y=a+b&z=%2F&flag HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(q.path, "/a b");
    cr_assert_eq(q.query.find("y")->second, "a b");
    cr_assert_eq(q.query.find("flag")->second, "");
    q = parse_one("GET http://h/p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(q.path, "/p");
    expect_error("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET /%0a HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    expect_error("GET /%2 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

// The response parser alone: framing, keep-alive decisions, and what it refuses.
#include "http_client/response_parser.hh"

#include <criterion/criterion.h>

using strata::http_client::detail::ResponseParser;
using State = ResponseParser::State;

namespace {

struct Parsed {
    ResponseParser p;
    std::string body;
    std::size_t used = 0;
};

// Feeds `wire` in pieces of `step` bytes (0: at once), as a socket might deliver it.
Parsed parse(std::string_view wire, std::size_t step = 0, bool head = false) {
    Parsed r;
    r.p.reset(head);
    auto sink = [&](std::string_view b) {
        r.body.append(b);
        return true;
    };
    if (!step) step = wire.size();
    for (std::size_t i = 0;
         i < wire.size() && r.p.state() != State::done && r.p.state() != State::error; i += step) {
        auto piece = wire.substr(i, step);
        r.used += r.p.feed(piece, sink);
    }
    return r;
}

} // namespace

Test(response_parser, content_length_in_any_pieces) {
    std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
    for (std::size_t step : {0, 1, 2, 3, 7}) {
        auto r = parse(wire, step);
        cr_assert_eq(r.p.state(), State::done, "step %zu", step);
        cr_assert_eq(r.p.status(), 200);
        cr_assert_eq(r.body, "hello");
        cr_assert(r.p.keep_alive());
        cr_assert_eq(r.p.headers().get("x-a").value_or(""), "b");
        cr_assert_eq(r.used, wire.size());
    }
}

Test(response_parser, chunked_with_extensions_and_trailers) {
    std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    for (std::size_t step : {0, 1, 4}) {
        auto r = parse(wire, step);
        cr_assert_eq(r.p.state(), State::done, "step %zu: %s", step, r.p.error().c_str());
        cr_assert_eq(r.body, "hello world");
        cr_assert(r.p.keep_alive());
    }
}

Test(response_parser, bodies_that_are_not_there) {
    auto head = parse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, true);
    cr_assert_eq(head.p.state(), State::done);
    cr_assert(head.p.keep_alive());
    auto nc = parse("HTTP/1.1 204 No Content\r\n\r\n");
    cr_assert_eq(nc.p.state(), State::done);
    auto nm = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
    cr_assert_eq(nm.p.state(), State::done);
    auto zero = parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    cr_assert_eq(zero.p.state(), State::done);
}

Test(response_parser, interim_responses_are_skipped) {
    auto r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
                   "\r\nok",
                   3);
    cr_assert_eq(r.p.state(), State::done);
    cr_assert_eq(r.p.status(), 201);
    cr_assert_eq(r.body, "ok");
}

Test(response_parser, close_delimited_and_keep_alive_rules) {
    auto r = parse("HTTP/1.1 200 OK\r\n\r\nuntil the end");
    cr_assert_eq(r.p.state(), State::body);
    r.p.eof();
    cr_assert_eq(r.p.state(), State::done);
    cr_assert_eq(r.body, "until the end");
    cr_assert_not(r.p.keep_alive());

    cr_assert_not(
        parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").p.keep_alive());
    cr_assert_not(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").p.keep_alive());
    cr_assert(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                  .p.keep_alive());
    // Both framings: read by chunks, never reused.
    auto both = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1\r\nx\r\n0\r\n\r\n");
    cr_assert_eq(both.p.state(), State::done);
    cr_assert_eq(both.body, "x");
    cr_assert_not(both.p.keep_alive());
}

Test(response_parser, extra_bytes_are_not_consumed) {
    std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n";
    auto r = parse(wire);
    cr_assert_eq(r.p.state(), State::done);
    cr_assert_lt(r.used, wire.size());
}

Test(response_parser, refuses_what_could_desynchronise) {
    const char* bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\nX-A: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: a\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 999 OK\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
    };
    for (const char* wire : bad) {
        auto r = parse(wire);
        cr_assert_eq(r.p.state(), State::error, "accepted: %s", wire);
        cr_assert_not(r.p.keep_alive());
        cr_assert_not(r.p.error().empty());
    }
}

// Line ends are CRLF only, whether the head comes whole (read where it is) or in pieces
// (gathered first): both paths refuse a CR or LF alone with the same reason.
Test(response_parser, bare_cr_or_lf_anywhere_in_the_head) {
    const char* bad[] = {
        "HTTP/1.1 200 OK\r\nX-A: a\r\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\rX-A: a\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: a\r\r\n\r\n",
    };
    for (const char* wire : bad)
        for (std::size_t step : {0, 1, 5}) {
            auto r = parse(wire, step);
            cr_assert_eq(r.p.state(), State::error, "accepted (step %zu): %s", step, wire);
            cr_assert(r.p.error().find("bare CR") != std::string::npos ||
                          r.p.error().find("control character") != std::string::npos,
                      "step %zu: %s", step, r.p.error().c_str());
        }
    auto ok = parse("HTTP/1.1 204 No Content\r\nX-A: a\tb\r\n\r\n");
    cr_assert_eq(ok.p.state(), State::done, "%s", ok.p.error().c_str());
    cr_assert_eq(ok.p.headers().get("x-a").value_or(""), "a\tb");
}

Test(response_parser, head_size_is_bounded) {
    std::string wire = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a');
    auto r = parse(wire, 4096);
    cr_assert_eq(r.p.state(), State::error);
}

Test(response_parser, eof_before_the_end_is_an_error) {
    auto r = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    r.p.eof();
    cr_assert_eq(r.p.state(), State::error);
    ResponseParser empty;
    empty.reset(false);
    empty.eof();
    cr_assert_eq(empty.state(), State::error);
    cr_assert_not(empty.started());
}

Test(response_parser, a_refusing_sink_stops_it) {
    ResponseParser p;
    p.reset(false);
    p.feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
           [](std::string_view) { return false; });
    cr_assert_eq(p.state(), State::error);
}

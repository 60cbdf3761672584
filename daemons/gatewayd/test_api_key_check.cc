// Unit tests of the gateway's memory of API key checks (api_key_check.hh), on a clock the
// test moves, and of how metad's answers are read.
#include "api_key_check.hh"

#include <criterion/criterion.h>
#include <string>

using namespace strata::gatewayd;
using namespace std::chrono_literals;
using Kind = KeyVerdict::Kind;

namespace {

KeyVerdict valid(std::uint64_t user) {
    KeyVerdict v;
    v.kind = Kind::valid;
    v.user = user;
    v.caller = "user=" + std::to_string(user);
    return v;
}

KeyVerdict of(Kind k) {
    KeyVerdict v;
    v.kind = k;
    return v;
}

const auto t0 = ApiKeyCache::Clock::time_point{} + 1000s;

} // namespace

Test(api_key_cache, remembered_until_expiry) {
    ApiKeyCache c(30s, 16);
    cr_assert_null(c.find("k", t0));
    cr_assert(c.wait("k", [](const KeyVerdict&) {}));
    c.settle("k", valid(7), t0);
    const KeyVerdict* v = c.find("k", t0 + 29s);
    cr_assert_not_null(v);
    cr_assert_eq(v->kind, Kind::valid);
    cr_assert_eq(v->user, 7u);
    cr_assert_null(c.find("k", t0 + 30s), "expired after exactly ttl");
    cr_assert_eq(c.size(), 0u, "the expired answer is dropped");
}

Test(api_key_cache, refusals_remembered_too) {
    ApiKeyCache c(5s, 16);
    c.wait("bad", [](const KeyVerdict&) {});
    c.settle("bad", of(Kind::invalid), t0);
    const KeyVerdict* v = c.find("bad", t0 + 4s);
    cr_assert_not_null(v);
    cr_assert_eq(v->kind, Kind::invalid);
    cr_assert_null(c.find("bad", t0 + 5s));
}

Test(api_key_cache, unavailable_not_remembered) {
    ApiKeyCache c(30s, 16);
    int called = 0;
    c.wait("k", [&](const KeyVerdict& v) {
        ++called;
        cr_assert_eq(v.kind, Kind::unavailable);
    });
    c.settle("k", of(Kind::unavailable), t0);
    cr_assert_eq(called, 1);
    cr_assert_null(c.find("k", t0), "metad down: asked again next time");
    cr_assert_eq(c.size(), 0u);
}

Test(api_key_cache, concurrent_lookups_coalesce) {
    ApiKeyCache c(30s, 16);
    int a = 0, b = 0, other = 0;
    cr_assert(c.wait("k", [&](const KeyVerdict& v) { a += int(v.user); }));
    cr_assert_not(c.wait("k", [&](const KeyVerdict& v) { b += int(v.user); }),
                  "a second request for the same key joins the first lookup");
    cr_assert(c.wait("j", [&](const KeyVerdict&) { ++other; }), "another key: its own lookup");
    cr_assert_eq(c.in_flight(), 2u);
    c.settle("k", valid(3), t0);
    cr_assert_eq(a, 3);
    cr_assert_eq(b, 3);
    cr_assert_eq(other, 0);
    cr_assert_eq(c.in_flight(), 1u);
    cr_assert(c.wait("k", [](const KeyVerdict&) {}), "settled: a new wait starts a new lookup");
}

Test(api_key_cache, waiter_may_look_up_again) {
    ApiKeyCache c(30s, 16);
    bool restarted = false;
    c.wait("k", [&](const KeyVerdict&) {
        restarted = c.wait("k", [](const KeyVerdict&) {});
        cr_assert_not_null(c.find("k", t0), "the answer is stored before waiters run");
    });
    c.settle("k", valid(1), t0);
    cr_assert(restarted);
}

Test(api_key_cache, bounded) {
    ApiKeyCache c(30s, 4);
    for (int i = 0; i < 4; ++i)
        c.settle("old" + std::to_string(i), valid(1), t0);
    cr_assert_eq(c.size(), 4u);
    // Full with live answers: starting over keeps the bound.
    c.settle("new", valid(2), t0 + 1s);
    cr_assert_leq(c.size(), 4u);
    cr_assert_not_null(c.find("new", t0 + 1s));
    // Full with expired ones: they go, the live stay.
    ApiKeyCache d(30s, 3);
    d.settle("a", valid(1), t0);
    d.settle("b", valid(1), t0 + 20s);
    d.settle("c", valid(1), t0 + 20s);
    d.settle("e", valid(1), t0 + 31s);
    cr_assert_eq(d.size(), 3u);
    cr_assert_null(d.find("a", t0 + 31s));
    cr_assert_not_null(d.find("b", t0 + 31s));
    cr_assert_not_null(d.find("e", t0 + 31s));
    for (int i = 0; i < 1000; ++i)
        d.settle(std::to_string(i), of(Kind::invalid), t0 + 40s);
    cr_assert_leq(d.size(), 3u, "never over the bound");
}

Test(api_key_verdict, metad_answers) {
    auto v = verdict_of(200, R"({"user":"12","key":"34","scopes":["files:read","files:write"]})");
    cr_assert_eq(v.kind, Kind::valid);
    cr_assert_eq(v.user, 12u);
    cr_assert_eq(v.key, 34u);
    cr_assert_str_eq(v.caller.c_str(), "user=12; key=34; scopes=files:read,files:write");
    cr_assert_eq(v.scopes.size(), 2u);
    cr_assert_eq(verdict_of(401, "{}").kind, Kind::invalid);
    cr_assert_eq(verdict_of(200, R"({"user":"1","key":"2","scopes":[]})").kind, Kind::valid);
    for (const char* bad :
         {"", "not json", "[]", R"({"user":"1","key":"2"})", R"({"user":1,"key":"2","scopes":[]})",
          R"({"user":"1x","key":"2","scopes":[]})",
          R"({"user":"1","key":"2","scopes":["a;user=9"]})",
          R"({"user":"1","key":"2","scopes":["a\r\nX: y"]})",
          R"({"user":"1","key":"2","scopes":[7]})"})
        cr_assert_eq(verdict_of(200, bad).kind, Kind::unavailable, "%s", bad);
    cr_assert_eq(verdict_of(500, "").kind, Kind::unavailable);
    cr_assert_eq(verdict_of(403, "").kind, Kind::unavailable, "a refused check is no verdict");
}

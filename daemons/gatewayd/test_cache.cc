// Unit tests of the response cache's parts: Cache-Control, dates, freshness (cache_control.hh)
// and the size-bounded LRU store (response_cache.hh).
#include "cache_control.hh"
#include "response_cache.hh"

#include <criterion/criterion.h>
#include <memory>
#include <string>

using namespace strata::gatewayd;

Test(cache_control, directives) {
    auto cc = parse_cache_control("public, max-age=60, S-MaxAge=\"120\" ,must-revalidate");
    cr_assert(cc.public_);
    cr_assert(cc.must_revalidate);
    cr_assert_not(cc.no_store);
    cr_assert_eq(cc.max_age.value_or(-1), 60);
    cr_assert_eq(cc.s_maxage.value_or(-1), 120);
    auto p = parse_cache_control("private=\"Set-Cookie, X-A\", no-cache=\"X-B\", no-store");
    cr_assert(p.private_);
    cr_assert(p.no_cache);
    cr_assert(p.no_store);
    cr_assert_not(p.max_age.has_value());
    // Several fields add up; a second max-age keeps the smaller.
    CacheDirectives both;
    parse_cache_control("max-age=100", both);
    parse_cache_control("max-age=10, only-if-cached", both);
    cr_assert_eq(both.max_age.value_or(-1), 10);
    cr_assert(both.only_if_cached);
}

Test(cache_control, malformed_values) {
    cr_assert_eq(parse_cache_control("max-age=abc").max_age.value_or(-1), 0);
    cr_assert_eq(parse_cache_control("max-age=").max_age.value_or(-1), 0);
    cr_assert_eq(parse_cache_control("max-age=-5").max_age.value_or(-1), 0);
    cr_assert_eq(parse_cache_control("max-age=99999999999999999999").max_age.value_or(-1),
                 std::int64_t{1} << 31);
    cr_assert_eq(parse_cache_control("max-stale").max_stale.value_or(-1), std::int64_t{1} << 31);
    auto junk = parse_cache_control(",,, =x, private=\"open, public");
    cr_assert(junk.private_);
    cr_assert_not(junk.public_); // inside the unterminated quoted value: not a directive
    cr_assert_not(parse_cache_control("").no_store);
    cr_assert_not(parse_cache_control("no-storex").no_store);
}

Test(cache_control, delta_seconds) {
    cr_assert_eq(parse_delta_seconds(" 42 ").value_or(-1), 42);
    cr_assert_not(parse_delta_seconds("4 2").has_value());
    cr_assert_not(parse_delta_seconds("").has_value());
    cr_assert_not(parse_delta_seconds("1e3").has_value());
}

Test(cache_control, http_dates) {
    cr_assert_eq(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").value_or(-1), 784111777);
    cr_assert_eq(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").value_or(-1), 0);
    cr_assert_eq(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT").value_or(-1), 951825600);
    cr_assert_not(parse_http_date("Thu, 29 Feb 2001 12:00:00 GMT").has_value());
    cr_assert_not(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").has_value());
    cr_assert_not(parse_http_date("0").has_value());
    cr_assert_not(parse_http_date("Sun, 06 Nov 1994 24:49:37 GMT").has_value());
    cr_assert_not(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT").has_value());
}

Test(cache_control, freshness_order) {
    FreshnessInput in;
    in.response_time = 1000000;
    auto cc = parse_cache_control("max-age=60, s-maxage=30");
    in.directives = &cc;
    in.has_expires = true;
    in.expires = 1000000 + 600;
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 30000); // s-maxage first
    cc.s_maxage.reset();
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 60000); // then max-age
    cc.max_age.reset();
    auto f = freshness_lifetime(in);
    cr_assert_eq(f.lifetime_ms, 600000); // then Expires - Date (the response time here)
    cr_assert(f.explicit_);
    in.date = 1000000 - 100;
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 700000);
    in.expires.reset(); // an Expires that does not parse: already expired
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 0);
}

Test(cache_control, heuristic) {
    FreshnessInput in;
    in.response_time = 1000000;
    in.last_modified = 1000000 - 5000;
    auto f = freshness_lifetime(in);
    cr_assert_eq(f.lifetime_ms, 500000); // 10% of the time since Last-Modified
    cr_assert_not(f.explicit_);
    in.last_modified = 0;
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 86400 * 1000); // a day at most
    in.status = 302;                                                // not heuristically cacheable
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 0);
    in.status = 200;
    in.last_modified.reset();
    cr_assert_eq(freshness_lifetime(in).lifetime_ms, 0); // nothing to go by
    cr_assert(cacheable_status(200) && cacheable_status(404) && cacheable_status(410));
    cr_assert(!cacheable_status(206) && !cacheable_status(304) && !cacheable_status(500));
}

Test(cache_control, initial_age) {
    // Age from the upstream plus the exchange's own delay.
    cr_assert_eq(initial_age_ms(10, std::nullopt, 5000, 5200), 10200);
    // A Date well before the response time is an age too.
    cr_assert_eq(initial_age_ms(std::nullopt, 100, 100000, 110000), 10000);
    cr_assert_eq(initial_age_ms(std::nullopt, 110, 110000, 110300), 300);
}

namespace {

std::shared_ptr<CachedAnswer> answer(std::size_t body_bytes,
                                     std::optional<std::string> vary_value = std::nullopt) {
    auto a = std::make_shared<CachedAnswer>();
    a->body.assign(body_bytes, 'x');
    a->lifetime_ms = 60000;
    if (vary_value) a->vary.emplace_back("accept-language", *vary_value);
    return a;
}

ResponseCache::RequestHeader lang(std::optional<std::string> v) {
    return [v](std::string_view name) -> std::optional<std::string> {
        return name == "accept-language" ? v : std::nullopt;
    };
}

} // namespace

Test(response_cache, lru_and_size_bound) {
    ResponseCache store(10000, 4000);
    auto none = lang(std::nullopt);
    CacheKey a{"h", "/a", ""}, b{"h", "/b", ""}, c{"h", "/c", ""}, d{"h", "/d", ""};
    cr_assert(store.store(a, answer(2500), none));
    cr_assert(store.store(b, answer(2500), none));
    cr_assert(store.store(c, answer(2500), none));
    cr_assert_eq(store.entries(), 3u);
    cr_assert(store.find(a, none)); // a is now the most recently used: b goes first
    cr_assert(store.store(d, answer(2500), none));
    cr_assert_leq(store.bytes(), 10000u);
    cr_assert(store.find(a, none));
    cr_assert_null(store.find(b, none).get());
    cr_assert(store.find(c, none));
    cr_assert(store.find(d, none));
    // Over max_object_bytes: not stored, nothing dropped.
    cr_assert_not(store.store(CacheKey{"h", "/big", ""}, answer(4001), none));
    cr_assert_eq(store.entries(), 3u);
    // The same key again replaces, it does not add.
    std::size_t before = store.bytes();
    cr_assert(store.store(a, answer(2500), none));
    cr_assert_eq(store.entries(), 3u);
    cr_assert_eq(store.bytes(), before);
}

Test(response_cache, vary_variants) {
    ResponseCache store(1 << 20, 1 << 16);
    CacheKey k{"h", "/v", "x=1"};
    cr_assert(store.store(k, answer(10, "en"), lang("en")));
    cr_assert(store.store(k, answer(20, "fr"), lang("fr")));
    cr_assert_eq(store.entries(), 2u);
    cr_assert_eq(store.find(k, lang("en"))->body.size(), 10u);
    cr_assert_eq(store.find(k, lang("fr"))->body.size(), 20u);
    cr_assert_null(store.find(k, lang("de")).get());
    cr_assert_null(store.find(k, lang(std::nullopt)).get()); // absent is not ""
    cr_assert(store.store(k, answer(30, "en"), lang("en"))); // replaces the en one
    cr_assert_eq(store.entries(), 2u);
    cr_assert_eq(store.find(k, lang("en"))->body.size(), 30u);
    for (int i = 0; i < 40; ++i) // bounded number of variants per key
        store.store(k, answer(1, "l" + std::to_string(i)), lang("l" + std::to_string(i)));
    cr_assert_eq(store.entries(), ResponseCache::max_variants);
}

Test(response_cache, invalidate_path_and_gauge) {
    strata::metrics::Gauge gauge;
    {
        ResponseCache store(1 << 20, 1 << 16, &gauge);
        auto none = lang(std::nullopt);
        store.store(CacheKey{"h", "/p", ""}, answer(10), none);
        store.store(CacheKey{"h", "/p", "a=1"}, answer(10), none);
        store.store(CacheKey{"h", "/p/q", ""}, answer(10), none);
        store.store(CacheKey{"other", "/p", ""}, answer(10), none);
        cr_assert_float_eq(gauge.value(), static_cast<double>(store.bytes()), 1e-9);
        store.invalidate("h", "/p");
        cr_assert_eq(store.entries(), 2u);
        cr_assert_null(store.find(CacheKey{"h", "/p", "a=1"}, none).get());
        cr_assert(store.find(CacheKey{"h", "/p/q", ""}, none));
        cr_assert(store.find(CacheKey{"other", "/p", ""}, none));
        cr_assert_float_eq(gauge.value(), static_cast<double>(store.bytes()), 1e-9);
    }
    cr_assert_float_eq(gauge.value(), 0.0, 1e-9); // a store gone takes its bytes with it
}

Test(response_cache, freshness_of_entries) {
    CachedAnswer a;
    a.response_ms = 1000;
    a.initial_age_ms = 500;
    a.lifetime_ms = 2000;
    cr_assert(a.fresh(1000));
    cr_assert(a.fresh(2499));
    cr_assert_not(a.fresh(2500));
    cr_assert_eq(a.age_ms(3000), 2500);
    a.no_cache = true;
    cr_assert_not(a.fresh(1000));
}

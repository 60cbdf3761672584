// Unit tests of the gateway's token buckets, on a clock the test moves.
#include "rate_limit.hh"

#include <criterion/criterion.h>
#include <string>

using namespace strata::gatewayd;
using namespace std::chrono_literals;

Test(rate_limit, burst_then_refill) {
    RateLimiter lim(2.0, 3); // 2 per second, bucket of 3
    auto t = RateLimiter::Clock::time_point{} + 100s;
    for (std::uint64_t left = 2;; --left) {
        auto v = lim.take("a", t);
        cr_assert(v.allowed);
        cr_assert_eq(v.limit, 3u);
        cr_assert_eq(v.remaining, left);
        if (left == 0) break;
    }
    auto refused = lim.take("a", t);
    cr_assert_not(refused.allowed);
    cr_assert_float_eq(refused.retry_after, 0.5, 1e-9);
    cr_assert_float_eq(refused.reset_seconds, 1.5, 1e-9);
    cr_assert_not(lim.take("a", t + 499ms).allowed);
    cr_assert(lim.take("a", t + 500ms).allowed); // one token back after 1/rate
    cr_assert_not(lim.take("a", t + 500ms).allowed);
    auto full = lim.take("a", t + 60s); // never more than the burst
    cr_assert(full.allowed);
    cr_assert_eq(full.remaining, 2u);
}

Test(rate_limit, keys_are_separate) {
    RateLimiter lim(1.0, 1);
    auto t = RateLimiter::Clock::time_point{} + 1s;
    cr_assert(lim.take("ip:1", t).allowed);
    cr_assert_not(lim.take("ip:1", t).allowed);
    cr_assert(lim.take("ip:2", t).allowed);
    cr_assert(lim.take("", t).allowed);
}

Test(rate_limit, memory_is_bounded_by_dropping_the_idlest) {
    RateLimiter lim(1.0, 1, 3);
    auto t = RateLimiter::Clock::time_point{} + 1s;
    for (const char* k : {"a", "b", "c"})
        cr_assert(lim.take(k, t).allowed);
    cr_assert_not(lim.take("a", t + 1ms).allowed); // a is now the most recent
    cr_assert(lim.take("d", t + 2ms).allowed);     // drops b, the idlest
    cr_assert_eq(lim.keys(), 3u);
    cr_assert_not(lim.take("a", t + 3ms).allowed); // a was kept: still empty
    cr_assert(lim.take("b", t + 4ms).allowed);     // b starts afresh
}

Test(rate_limit, bad_parameters) {
    cr_assert_throw(RateLimiter(0.0, 1), std::invalid_argument);
    cr_assert_throw(RateLimiter(1.0, 0), std::invalid_argument);
}

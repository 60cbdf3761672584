// Unit tests of the pure parts of upstream balancing: the balancers' distribution, the
// consistent-hash ring's stability when members come and go, rise/fall counting, passive
// ejection and the retry budget, on clocks the tests move.
#include "balancer.hh"
#include "health_check.hh"
#include "http/message.hh"
#include "outlier.hh"
#include "proxy_config.hh"
#include "retry_budget.hh"

#include <criterion/criterion.h>
#include <map>
#include <string>
#include <vector>

using namespace strata::gatewayd;
using namespace std::chrono_literals;

namespace {

std::vector<MemberSpec> members(int n, int weight = 1) {
    std::vector<MemberSpec> out;
    for (int i = 0; i < n; ++i)
        out.push_back({"http://10.0.0." + std::to_string(i + 1) + ":80", weight});
    return out;
}

const Balancer::Usable all = [](std::size_t) { return true; };

// Which member each of `keys` goes to.
std::vector<std::size_t> assign(Balancer& b, int keys, const Balancer::Usable& usable = all) {
    std::vector<std::size_t> out;
    for (int k = 0; k < keys; ++k)
        out.push_back(*b.pick("/key/" + std::to_string(k), usable));
    return out;
}

} // namespace

Test(balancer, smooth_weighted_round_robin) {
    auto m = members(3);
    m[0].weight = 5;
    Balancer b(Balance::round_robin, m);
    std::string seq;
    for (int i = 0; i < 7; ++i)
        seq += static_cast<char>('a' + *b.pick("", all));
    cr_assert_str_eq(seq.c_str(), "aabacaa"); // nginx's order for 5,1,1
    std::map<std::size_t, int> n;
    for (int i = 0; i < 700; ++i)
        ++n[*b.pick("", all)];
    cr_assert_eq(n[0], 500);
    cr_assert_eq(n[1], 100);
    cr_assert_eq(n[2], 100);
}

Test(balancer, round_robin_skips_unusable) {
    Balancer b(Balance::round_robin, members(3));
    for (int i = 0; i < 20; ++i)
        cr_assert_neq(*b.pick("", [](std::size_t i) { return i != 1; }), 1u);
    cr_assert_not(b.pick("", [](std::size_t) { return false; }).has_value());
}

Test(balancer, least_conn_by_weight) {
    auto m = members(2);
    m[1].weight = 3;
    Balancer b(Balance::least_conn, m);
    // Member 1 (weight 3) takes three in flight for member 0's one.
    std::map<std::size_t, int> n;
    for (int i = 0; i < 8; ++i) {
        auto p = *b.pick("", all);
        b.begin(p);
        ++n[p];
    }
    cr_assert_eq(n[0], 2);
    cr_assert_eq(n[1], 6);
    b.end(0);
    b.end(0);
    cr_assert_eq(*b.pick("", all), 0u); // now idle: 0/1 < 6/3
}

Test(balancer, least_conn_ties_take_turns) {
    Balancer b(Balance::least_conn, members(3));
    std::map<std::size_t, int> n;
    for (int i = 0; i < 30; ++i)
        ++n[*b.pick("", all)]; // nothing begins: all always idle
    cr_assert_eq(n[0], 10);
    cr_assert_eq(n[1], 10);
    cr_assert_eq(n[2], 10);
}

Test(balancer, ring_spreads_keys_by_weight) {
    auto m = members(4);
    m[3].weight = 2;
    Balancer b(Balance::hash, m);
    cr_assert_eq(b.ring_points(), 500u);
    std::map<std::size_t, int> n;
    for (auto p : assign(b, 10000))
        ++n[p];
    // Ideal: 2000 each, 4000 for the heavy one; a 100-point ring is within ~25%.
    for (std::size_t i = 0; i < 3; ++i)
        cr_assert(n[i] > 1400 && n[i] < 2600, "member %zu got %d", i, n[i]);
    cr_assert(n[3] > 3000 && n[3] < 5000, "heavy member got %d", n[3]);
}

Test(balancer, ring_is_sticky) {
    Balancer a(Balance::hash, members(5)), b(Balance::hash, members(5));
    cr_assert(assign(a, 1000) == assign(b, 1000)); // no state: the same key, the same member
    for (int i = 0; i < 10; ++i)
        cr_assert_eq(*a.pick("user-7", all), *a.pick("user-7", all));
}

Test(balancer, ring_adding_a_member_moves_about_one_nth) {
    Balancer five(Balance::hash, members(5)), six(Balance::hash, members(6));
    auto before = assign(five, 10000), after = assign(six, 10000);
    int moved = 0;
    for (std::size_t k = 0; k < before.size(); ++k)
        if (before[k] != after[k]) {
            ++moved;
            cr_assert_eq(after[k], 5u, "key %zu moved between old members", k); // only to the new
        }
    // 1/6 of 10000 is 1667.
    cr_assert(moved > 1000 && moved < 2400, "%d keys moved", moved);
}

Test(balancer, ring_removing_a_member_moves_only_its_keys) {
    auto m = members(5);
    Balancer full(Balance::hash, m);
    m.erase(m.begin() + 2);
    Balancer less(Balance::hash, m);
    auto before = assign(full, 10000), after = assign(less, 10000);
    int moved = 0;
    for (std::size_t k = 0; k < before.size(); ++k) {
        std::size_t was = before[k];
        if (was == 2) {
            ++moved;
            continue;
        }
        std::size_t now_index = was > 2 ? was - 1 : was; // same member, renumbered
        cr_assert_eq(after[k], now_index, "key %zu of a remaining member moved", k);
    }
    cr_assert(moved > 1200 && moved < 2800, "%d keys were on the removed member", moved);
}

Test(balancer, ring_falls_to_the_next_member) {
    Balancer b(Balance::hash, members(4));
    auto before = assign(b, 2000);
    auto down = [](std::size_t i) { return i != 1; };
    auto after = assign(b, 2000, down);
    for (std::size_t k = 0; k < before.size(); ++k) {
        cr_assert_neq(after[k], 1u);
        if (before[k] != 1) cr_assert_eq(after[k], before[k], "key %zu moved", k);
    }
    // Down member 1 and the next pick skips what was tried: still a member, then none.
    cr_assert(b.pick("k", [](std::size_t) { return false; }) == std::nullopt);
}

Test(balancer, ring_without_key_goes_round_robin) {
    Balancer b(Balance::ip_hash, members(3));
    std::map<std::size_t, int> n;
    for (int i = 0; i < 30; ++i)
        ++n[*b.pick("", all)];
    cr_assert_eq(n[0], 10);
    cr_assert_eq(n[1], 10);
    cr_assert_eq(n[2], 10);
}

Test(balancer, ring_size_is_bounded) {
    auto m = members(256, 100);
    for (std::size_t i = 0; i < m.size(); ++i)
        m[i].target =
            "http://10.0." + std::to_string(i / 200) + "." + std::to_string(i % 200) + ":80";
    Balancer b(Balance::hash, m);
    cr_assert(b.ring_points() <= 400000u && b.ring_points() >= 256u * 100u);
}

Test(balancer, keys_of_requests) {
    strata::http::Request req;
    req.remote_address = "192.0.2.7";
    req.path = "/a b";
    req.target = "/a%20b?x=1";
    req.headers.emplace("X-Tenant", "acme");
    req.headers.emplace("Cookie", "theme=dark; sid=abc123 ");
    PoolSpec p = parse_pool("p unix:/a balance=ip_hash");
    cr_assert(balance_key(p, req) == "192.0.2.7");
    p = parse_pool("p unix:/a hash=uri");
    cr_assert(balance_key(p, req) == "/a%20b?x=1");
    p = parse_pool("p unix:/a balance=hash hash=header:x-tenant");
    cr_assert(balance_key(p, req) == "acme");
    p = parse_pool("p unix:/a hash=cookie:sid");
    cr_assert(balance_key(p, req) == "abc123");
    p = parse_pool("p unix:/a hash=cookie:nope");
    cr_assert(balance_key(p, req) == "");
    p = parse_pool("p unix:/a");
    cr_assert(balance_key(p, req) == "");
    cr_assert(cookie_value("a=1;b=2", "b") == std::optional<std::string_view>("2"));
    cr_assert(cookie_value("ab=1", "a") == std::nullopt);
    cr_assert(cookie_value("", "a") == std::nullopt);
}

Test(health, rise_and_fall) {
    HealthState s(2, 3);
    cr_assert(s.up());
    cr_assert_not(s.record(false));
    cr_assert_not(s.record(false));
    cr_assert_not(s.record(true)); // a success breaks the run
    cr_assert_not(s.record(false));
    cr_assert_not(s.record(false));
    cr_assert(s.record(false)); // third in a row: down
    cr_assert_not(s.up());
    cr_assert_not(s.record(true));
    cr_assert_not(s.record(false));
    cr_assert_not(s.record(true));
    cr_assert(s.record(true)); // second in a row: up
    cr_assert(s.up());
}

Test(outlier, ejects_after_failures_in_a_row) {
    OutlierSpec spec;
    spec.eject_after = 3;
    spec.eject_ms = 1000;
    spec.eject_max_ms = 5000;
    OutlierDetector d(spec, 4);
    auto t = OutlierDetector::Clock::time_point{} + 100s;
    cr_assert_not(d.failure(0, t).has_value());
    cr_assert_not(d.failure(0, t).has_value());
    d.success(0); // breaks the run
    cr_assert_not(d.failure(0, t).has_value());
    cr_assert_not(d.failure(0, t).has_value());
    auto span = d.failure(0, t);
    cr_assert(span && *span == 1000ms);
    cr_assert(d.ejected(0, t + 999ms));
    cr_assert_not(d.ejected(0, t + 1000ms));
    cr_assert(*d.next_return(t) == t + 1000ms);
    // Failures of requests still in flight while ejected do not count.
    cr_assert_not(d.failure(0, t + 10ms).has_value());
    // Again: twice as long, then 4 s, then capped at 5 s.
    auto t2 = t + 1000ms;
    for (auto want : {2000ms, 4000ms, 5000ms, 5000ms}) {
        d.failure(0, t2);
        d.failure(0, t2);
        auto s = d.failure(0, t2);
        cr_assert(s && *s == want, "want %lld ms", static_cast<long long>(want.count()));
        t2 += *s;
    }
    // Quiet for eject_max_ms after the last one: back to eject_ms.
    t2 += 5000ms;
    d.failure(0, t2);
    d.failure(0, t2);
    cr_assert(*d.failure(0, t2) == 1000ms);
}

Test(outlier, never_more_than_max_percent) {
    OutlierSpec spec;
    spec.eject_after = 1;
    spec.max_percent = 50;
    OutlierDetector d(spec, 4);
    auto t = OutlierDetector::Clock::time_point{} + 100s;
    cr_assert(d.failure(0, t).has_value());
    cr_assert(d.failure(1, t).has_value());
    cr_assert_not(d.failure(2, t).has_value()); // a third of four would be 75%
    cr_assert_eq(d.ejected_count(t), 2u);
    // Once the others are back, the one still failing goes out.
    auto later = t + std::chrono::milliseconds(spec.eject_ms);
    cr_assert(d.failure(2, later).has_value());

    OutlierDetector single(spec, 1);
    cr_assert_not(single.failure(0, t).has_value()); // 1 of 1 is 100%: never
    OutlierSpec off;
    off.eject_after = 0;
    OutlierDetector none(off, 4);
    for (int i = 0; i < 100; ++i)
        cr_assert_not(none.failure(0, t).has_value());
}

Test(retry_budget, percent_of_requests_plus_a_minimum) {
    RetryBudget b(20, 3);
    auto t = RetryBudget::Clock::time_point{} + 1000s;
    // No requests: the minimum of 3 in this second, then none.
    for (int i = 0; i < 3; ++i)
        cr_assert(b.try_retry(t));
    cr_assert_not(b.try_retry(t));
    // 100 requests in the window: 20% of them, less the 3 already made.
    for (int i = 0; i < 100; ++i)
        b.request(t);
    int more = 0;
    while (b.try_retry(t) && more < 1000)
        ++more;
    cr_assert_eq(more, 17);
    // The next second: its own minimum of 3, the window still full.
    int next = 0;
    while (b.try_retry(t + 1s) && next < 1000)
        ++next;
    cr_assert_eq(next, 3);
    // Ten seconds on, the old requests and retries left the window.
    int later = 0;
    while (b.try_retry(t + 11s) && later < 1000)
        ++later;
    cr_assert_eq(later, 3);
}

Test(retry_budget, zero_budget) {
    RetryBudget b(0, 0);
    auto t = RetryBudget::Clock::time_point{} + 1000s;
    for (int i = 0; i < 50; ++i)
        b.request(t);
    cr_assert_not(b.try_retry(t));
}

Test(pool_options, parsed_and_refused) {
    auto p = parse_pool("app hash=header:X-User health=/healthz health_interval_ms=200 "
                        "health_timeout_ms=100 rise=1 fall=2 eject_after=2 eject_ms=500 "
                        "eject_max_ms=4000 eject_max_percent=34 retries=2 retry_5xx=on "
                        "retry_budget=50 retry_min_per_s=7 unix:/a http://127.0.0.1:1 weight=2");
    cr_assert(p.balance == Balance::hash);
    cr_assert(p.hash.kind == HashKey::Kind::header && p.hash.name == "X-User");
    cr_assert(p.health.path == "/healthz" && p.health.interval_ms == 200 &&
              p.health.timeout_ms == 100 && p.health.rise == 1 && p.health.fall == 2);
    cr_assert(p.outlier.eject_after == 2 && p.outlier.eject_ms == 500 &&
              p.outlier.eject_max_ms == 4000 && p.outlier.max_percent == 34);
    cr_assert(p.retry.retries == 2 && p.retry.on_5xx && p.retry.budget_percent == 50 &&
              p.retry.min_per_second == 7);
    cr_assert_eq(p.members.size(), 2u);
    cr_assert_eq(p.members[1].weight, 2);
    auto d = parse_pool("d unix:/a");
    cr_assert(d.health.path.empty() && d.outlier.eject_after == 5 && d.retry.retries == 1 &&
              !d.retry.on_5xx && d.retry.budget_percent == 20 && d.retry.min_per_second == 3);
    cr_assert(parse_pool("c unix:/a hash=cookie:sid").hash.kind == HashKey::Kind::cookie);
    cr_assert(parse_pool("i unix:/a balance=ip_hash").balance == Balance::ip_hash);
    cr_assert(parse_pool("h unix:/a health=/status?full=1&x=%20").health.path ==
              "/status?full=1&x=%20");
    for (const char* bad : {"p unix:/a balance=hash",
                            "p unix:/a balance=ip_hash hash=uri",
                            "p unix:/a hash=url",
                            "p unix:/a hash=header:",
                            "p unix:/a hash=header:a:b",
                            "p unix:/a hash=uri:x",
                            "p unix:/a health=healthz",
                            "p unix:/a health=/a#b",
                            "p unix:/a health=/a\"b",
                            "p unix:/a health=/\x01",
                            "p unix:/a rise=2",
                            "p unix:/a health=/h fall=0",
                            "p unix:/a health=/h health_interval_ms=1",
                            "p unix:/a retries=6",
                            "p unix:/a retry_5xx=yes",
                            "p unix:/a retry_budget=101",
                            "p unix:/a eject_ms=1000 eject_max_ms=999",
                            "p unix:/a eject_max_percent=-1",
                            "p unix:/a retries=1 retries=2",
                            "p unix:/a nonsense=1",
                            "p unix:/a =1"})
        cr_assert_throw(parse_pool(bad), std::invalid_argument, "%s", bad);
}

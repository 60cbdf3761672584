// Unit tests of strata::ids (snowflake ids).

#include "ids/ids.hh"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <criterion/criterion.h>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace strata::ids;
using std::chrono::milliseconds;
using std::chrono::system_clock;

namespace {
// A hand-driven clock, readable from several threads.
struct FakeClock {
    std::atomic<std::int64_t> unix_ms{epoch_unix_ms + 1'000'000};
    Clock fn() {
        return [this] { return system_clock::time_point(milliseconds(unix_ms.load())); };
    }
};
} // namespace

Test(ids, compose_decompose_roundtrip) {
    const std::uint64_t id = compose(123456789, 1023, 4095);
    const Parts p = decompose(id);
    cr_assert_eq(p.timestamp_ms, 123456789u);
    cr_assert_eq(p.node, 1023u);
    cr_assert_eq(p.sequence, 4095u);
    cr_assert_eq(id >> 63, 0u, "top bit stays clear");
    cr_assert(p.time() == system_clock::time_point(milliseconds(epoch_unix_ms + 123456789)));
    cr_assert_eq(decompose(compose(max_timestamp, 0, 0)).timestamp_ms, max_timestamp);
    cr_assert_throw(compose(max_timestamp + 1, 0, 0), std::out_of_range);
    cr_assert_throw(compose(0, 0, 4096), std::out_of_range);
}

Test(ids, node_id_range_checked) {
    cr_assert_throw(Generator(1024), std::out_of_range);
    cr_assert_throw(Generator(70000), std::out_of_range);
    Generator lo(0), hi(1023);
    cr_assert_eq(decompose(lo.next()).node, 0u);
    cr_assert_eq(decompose(hi.next()).node, 1023u);
    cr_assert_eq(hi.node_id(), 1023u);
}

Test(ids, timestamp_follows_clock) {
    FakeClock clk;
    Generator g(7, clk.fn());
    const Parts a = decompose(g.next());
    cr_assert_eq(a.timestamp_ms, 1'000'000u);
    cr_assert_eq(a.sequence, 0u);
    clk.unix_ms += 5;
    const Parts b = decompose(g.next());
    cr_assert_eq(b.timestamp_ms, 1'000'005u);
    cr_assert_eq(b.sequence, 0u, "a new millisecond restarts the sequence");
    cr_assert_eq(b.node, 7u);
    // The real clock: an id made now decodes to about now.
    Generator real(1);
    const auto skew = decompose(real.next()).time() - system_clock::now();
    cr_assert(skew < std::chrono::seconds(1) && skew > -std::chrono::seconds(1));
}

Test(ids, sequence_overflow_moves_to_next_millisecond) {
    FakeClock clk; // never advances
    Generator g(3, clk.fn());
    std::uint64_t prev = 0;
    for (std::uint32_t i = 0; i < 3 * 4096 + 10; ++i) {
        const std::uint64_t id = g.next();
        cr_assert_gt(id, prev);
        const Parts p = decompose(id);
        cr_assert_eq(p.timestamp_ms, 1'000'000u + i / 4096, "id %u", i);
        cr_assert_eq(p.sequence, i % 4096, "id %u", i);
        prev = id;
    }
    // When the clock catches up with the borrowed milliseconds nothing repeats.
    clk.unix_ms += 2;
    const std::uint64_t id = g.next();
    cr_assert_gt(id, prev);
    cr_assert_eq(decompose(id).timestamp_ms, 1'000'003u);
    cr_assert_eq(decompose(id).sequence, 10u);
}

Test(ids, clock_stepping_back_keeps_increasing) {
    FakeClock clk;
    Generator g(9, clk.fn());
    std::uint64_t prev = 0;
    for (int i = 0; i < 100; ++i) {
        clk.unix_ms += 1;
        const std::uint64_t id = g.next();
        cr_assert_gt(id, prev);
        prev = id;
    }
    const std::uint64_t high_ts = decompose(prev).timestamp_ms;
    clk.unix_ms -= 5000; // NTP steps the clock back by 5 s
    for (int i = 0; i < 10000; ++i) {
        const std::uint64_t id = g.next();
        cr_assert_gt(id, prev, "id %d after the step went back", i);
        cr_assert_geq(decompose(id).timestamp_ms, high_ts);
        prev = id;
    }
    // Clock before the epoch: still increasing.
    clk.unix_ms = 0;
    cr_assert_gt(g.next(), prev);
}

Test(ids, after_resumes_past_previous_run) {
    FakeClock clk;
    Generator first(5, clk.fn());
    std::uint64_t last = 0;
    for (int i = 0; i < 10; ++i)
        last = first.next();
    clk.unix_ms -= 60000; // restarted with a clock one minute behind
    Generator second(5, clk.fn(), last);
    cr_assert_gt(second.next(), last);
}

Test(ids, two_threads_million_ids_unique) {
    constexpr int per_thread = 500'000;
    Generator g(42);
    std::vector<std::uint64_t> a(per_thread), b(per_thread);
    auto run = [&g](std::vector<std::uint64_t>& out) {
        for (auto& id : out)
            id = g.next();
    };
    std::thread t1(run, std::ref(a)), t2(run, std::ref(b));
    t1.join();
    t2.join();
    cr_assert(std::adjacent_find(a.begin(), a.end(), std::greater_equal<>()) == a.end(),
              "thread 1 ids not strictly increasing");
    cr_assert(std::adjacent_find(b.begin(), b.end(), std::greater_equal<>()) == b.end(),
              "thread 2 ids not strictly increasing");
    std::vector<std::uint64_t> all(a);
    all.insert(all.end(), b.begin(), b.end());
    std::sort(all.begin(), all.end());
    cr_assert(std::adjacent_find(all.begin(), all.end()) == all.end(), "duplicate id");
    cr_assert_eq(all.size(), 1'000'000u);
    for (std::uint64_t id : {all.front(), all.back()})
        cr_assert_eq(decompose(id).node, 42u);
}

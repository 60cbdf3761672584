#include "metrics/metrics.hh"

#include <cmath>
#include <criterion/criterion.h>
#include <string>
#include <thread>
#include <vector>

using namespace strata::metrics;

namespace {

void expect_text(const Registry& r, const std::string& want) {
    std::string got = r.render();
    cr_assert_eq(got, want, "render mismatch:\n--- got ---\n%s--- want ---\n%s", got.c_str(),
                 want.c_str());
}

template <class F>
bool throws_error(F&& f) {
    try {
        f();
    } catch (const Error&) {
        return true;
    }
    return false;
}

} // namespace

Test(metrics, counter_renders) {
    Registry r;
    auto& c = r.counter("strata_requests_total", "Requests served.");
    c.inc();
    c.inc(2);
    c.inc(0.5);
    cr_assert_eq(c.value(), 3.5);
    expect_text(r, "# HELP strata_requests_total Requests served.\n"
                   "# TYPE strata_requests_total counter\n"
                   "strata_requests_total 3.5\n");
    cr_assert(throws_error([&] { c.inc(-1); }));
    cr_assert(throws_error([&] { c.inc(NAN); }));
}

Test(metrics, gauge_renders_and_sorts_by_name) {
    Registry r;
    auto& g = r.gauge("b_in_flight", "In flight.");
    r.gauge("a_temperature", "");
    g.inc();
    g.inc(4);
    g.dec(2);
    cr_assert_eq(g.value(), 3.0);
    expect_text(r, "# TYPE a_temperature gauge\n"
                   "a_temperature 0\n"
                   "# HELP b_in_flight In flight.\n"
                   "# TYPE b_in_flight gauge\n"
                   "b_in_flight 3\n");
    g.set(-0.25);
    cr_assert_eq(g.value(), -0.25);
    g.set(INFINITY);
    cr_assert(r.render().find("b_in_flight +Inf\n") != std::string::npos);
    g.set(NAN);
    cr_assert(r.render().find("b_in_flight NaN\n") != std::string::npos);
}

Test(metrics, labelled_counter_family) {
    Registry r;
    auto& f = r.counter_family("http_requests_total", "HTTP requests.", {"method", "code"});
    f.with({"GET", "200"}).inc(3);
    f.with({"POST", "201"}).inc();
    f.with({"GET", "200"}).inc();
    f.with({"GET", "404"});
    cr_assert_eq(&f.with({"GET", "200"}), &f.with(std::vector<std::string>{"GET", "200"}));
    expect_text(r, "# HELP http_requests_total HTTP requests.\n"
                   "# TYPE http_requests_total counter\n"
                   "http_requests_total{method=\"GET\",code=\"200\"} 4\n"
                   "http_requests_total{method=\"GET\",code=\"404\"} 0\n"
                   "http_requests_total{method=\"POST\",code=\"201\"} 1\n");
    cr_assert(throws_error([&] { f.with({"GET"}); }));
    cr_assert(throws_error([&] { f.with({"GET", "200", "x"}); }));
}

Test(metrics, histogram_renders_cumulative_buckets) {
    Registry r;
    auto& h = r.histogram("req_seconds", "Latency.", {0.1, 0.5, 1});
    h.observe(0.05);
    h.observe(0.1); // bounds are inclusive
    h.observe(0.3);
    h.observe(7);
    expect_text(r, "# HELP req_seconds Latency.\n"
                   "# TYPE req_seconds histogram\n"
                   "req_seconds_bucket{le=\"0.1\"} 2\n"
                   "req_seconds_bucket{le=\"0.5\"} 3\n"
                   "req_seconds_bucket{le=\"1\"} 3\n"
                   "req_seconds_bucket{le=\"+Inf\"} 4\n"
                   "req_seconds_sum 7.45\n"
                   "req_seconds_count 4\n");
}

Test(metrics, labelled_histogram_and_default_buckets) {
    Registry r;
    auto& f = r.histogram_family("op_seconds", "Op latency.", {"op"});
    f.with({"get"}).observe(0.002);
    std::string text = r.render();
    std::string want = "# HELP op_seconds Op latency.\n"
                       "# TYPE op_seconds histogram\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.005\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.01\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.025\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.05\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.25\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"0.5\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"1\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"2.5\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"5\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"10\"} 1\n"
                       "op_seconds_bucket{op=\"get\",le=\"+Inf\"} 1\n"
                       "op_seconds_sum{op=\"get\"} 0.002\n"
                       "op_seconds_count{op=\"get\"} 1\n";
    cr_assert_eq(text, want, "got:\n%s", text.c_str());
}

Test(metrics, histogram_bucket_validation) {
    Registry r;
    cr_assert(throws_error([&] { r.histogram("h1", "", {1, 1}); }));
    cr_assert(throws_error([&] { r.histogram("h2", "", {2, 1}); }));
    cr_assert(throws_error([&] { r.histogram("h3", "", {NAN}); }));
    cr_assert(throws_error([&] { r.histogram_family("h4", "", {"le"}); }));
    // A trailing +Inf is implied anyway and accepted; no bounds at all leaves only +Inf.
    r.histogram("h5", "", {1, INFINITY}).observe(2);
    r.histogram("h6", "", {}).observe(2);
    std::string text = r.render();
    cr_assert(text.find("h5_bucket{le=\"1\"} 0\nh5_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
    cr_assert(text.find("# TYPE h6 histogram\nh6_bucket{le=\"+Inf\"} 1\nh6_sum 2\nh6_count 1\n") !=
              std::string::npos);
    cr_assert_eq(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
    cr_assert_eq(linear_buckets(0.5, 0.5, 3), (std::vector<double>{0.5, 1, 1.5}));
}

Test(metrics, escapes_label_values_and_help) {
    Registry r;
    auto& f = r.gauge_family("esc", "Help with \\ backslash\nand \"quotes\".", {"path"});
    f.with({"a\\b\"c\nd"}).set(1);
    expect_text(r, "# HELP esc Help with \\\\ backslash\\nand \"quotes\".\n"
                   "# TYPE esc gauge\n"
                   "esc{path=\"a\\\\b\\\"c\\nd\"} 1\n");
}

Test(metrics, callback_gauge_is_computed_at_render) {
    Registry r;
    double now = 1.5;
    r.gauge_callback("process_uptime_seconds", "Uptime.", [&] { return now; });
    r.counter_callback("bytes_total", "Bytes.", [] { return 42.0; });
    expect_text(r, "# HELP bytes_total Bytes.\n"
                   "# TYPE bytes_total counter\n"
                   "bytes_total 42\n"
                   "# HELP process_uptime_seconds Uptime.\n"
                   "# TYPE process_uptime_seconds gauge\n"
                   "process_uptime_seconds 1.5\n");
    now = 2.25;
    cr_assert(r.render().find("process_uptime_seconds 2.25\n") != std::string::npos);
}

Test(metrics, name_validation) {
    cr_assert(valid_metric_name("strata_http_requests_total"));
    cr_assert(valid_metric_name("ns:sub_metric"));
    cr_assert(valid_metric_name("_x9"));
    cr_assert_not(valid_metric_name(""));
    cr_assert_not(valid_metric_name("9lives"));
    cr_assert_not(valid_metric_name("has-dash"));
    cr_assert_not(valid_metric_name("has space"));
    cr_assert_not(valid_metric_name("dot.ted"));
    cr_assert(valid_label_name("code"));
    cr_assert(valid_label_name("_private"));
    cr_assert_not(valid_label_name("__reserved"));
    cr_assert_not(valid_label_name("with:colon"));
    cr_assert_not(valid_label_name("1x"));

    Registry r;
    cr_assert(throws_error([&] { r.counter("bad-name", "x"); }));
    cr_assert(throws_error([&] { r.counter_family("ok", "x", {"bad label"}); }));
    cr_assert(throws_error([&] { r.counter_family("ok2", "x", {"a", "a"}); }));
    cr_assert(throws_error([&] { r.gauge_callback("cb", "x", nullptr); }));
    r.counter("dup", "x");
    cr_assert(throws_error([&] { r.gauge("dup", "x"); }));
    // A histogram's series names collide with other metrics in both directions.
    r.histogram("lat", "x");
    cr_assert(throws_error([&] { r.counter("lat_count", "x"); }));
    r.counter("size_sum", "x");
    cr_assert(throws_error([&] { r.histogram("size", "x"); }));
    // Failed registrations leave nothing behind.
    cr_assert(r.render().find("bad") == std::string::npos);
    cr_assert(r.render().find("ok") == std::string::npos);
}

Test(metrics, concurrent_increments_are_exact) {
    Registry r;
    auto& c = r.counter("c_total", "");
    auto& frac = r.counter("frac_total", "");
    auto& g = r.gauge("g", "");
    auto& h = r.histogram("h", "", {1, 2});
    auto& fam = r.counter_family("fam_total", "", {"k"});
    constexpr int kThreads = 8;
    constexpr int kIters = 100000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            auto& mine = fam.with({t % 2 ? "odd" : "even"});
            for (int i = 0; i < kIters; ++i) {
                c.inc();
                frac.inc(0.5); // exact in binary, so the CAS sum must be exact too
                g.inc();
                g.dec(0.25);
                h.observe(i % 3); // 0, 1, 2 -> buckets le=1 gets 2/3, le=2 all
                mine.inc();
            }
        });
    }
    for (auto& t : threads)
        t.join();
    const double n = double(kThreads) * kIters;
    cr_assert_eq(c.value(), n);
    cr_assert_eq(frac.value(), n / 2);
    cr_assert_eq(g.value(), n * 0.75);
    auto snap = h.snapshot();
    cr_assert_eq(snap.count, std::uint64_t(n));
    cr_assert_eq(snap.cumulative.back(), snap.count);
    std::uint64_t per_thread_le1 = 0;
    double per_thread_sum = 0;
    for (int i = 0; i < kIters; ++i) {
        per_thread_le1 += (i % 3) <= 1;
        per_thread_sum += i % 3;
    }
    cr_assert_eq(snap.cumulative[0], per_thread_le1 * kThreads);
    cr_assert_eq(snap.sum, per_thread_sum * kThreads);
    cr_assert_eq(fam.with({"odd"}).value(), n / 2);
    cr_assert_eq(fam.with({"even"}).value(), n / 2);
}

Test(metrics, concurrent_child_creation_and_render) {
    Registry r;
    auto& fam = r.counter_family("per_key_total", "", {"key"});
    std::atomic<bool> stop{false};
    std::thread renderer([&] {
        while (!stop)
            (void)r.render();
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                fam.with({std::to_string(i % 50)}).inc();
        });
    }
    for (auto& t : threads)
        t.join();
    stop = true;
    renderer.join();
    double total = 0;
    for (int i = 0; i < 50; ++i)
        total += fam.with({std::to_string(i)}).value();
    cr_assert_eq(total, 4000.0);
}

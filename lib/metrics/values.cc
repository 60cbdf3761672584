// Hot-path value types: Counter, Histogram and the bucket helpers.
#include "metrics/metrics.hh"

#include <algorithm>
#include <cmath>

namespace strata::metrics {

void Counter::inc(double v) {
    if (!(v >= 0.0)) throw Error("counter increment must be >= 0");
    // Whole numbers keep the exact integer path; only fractions pay for the CAS loop.
    if (v < 18446744073709551616.0 && v == std::floor(v)) {
        whole_.fetch_add(static_cast<std::uint64_t>(v), std::memory_order_relaxed);
    } else {
        fraction_.add(v);
    }
}

double Counter::value() const noexcept {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) + fraction_.load();
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double v) noexcept {
    // NaN compares false with every bound: count it in +Inf like the Go client does.
    std::size_t i =
        std::isnan(v) ? bounds_.size()
                      : static_cast<std::size_t>(
                            std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.add(v);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.reserve(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += counts_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(running);
    }
    s.count = running;
    s.sum = sum_.load();
    return s;
}

std::vector<double> default_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
}

std::vector<double> linear_buckets(double start, double width, std::size_t count) {
    if (!(width > 0.0)) throw Error("linear_buckets: width must be > 0");
    std::vector<double> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(start + width * static_cast<double>(i));
    return out;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
    if (!(start > 0.0)) throw Error("exponential_buckets: start must be > 0");
    if (!(factor > 1.0)) throw Error("exponential_buckets: factor must be > 1");
    std::vector<double> out;
    out.reserve(count);
    double v = start;
    for (std::size_t i = 0; i < count; ++i, v *= factor)
        out.push_back(v);
    return out;
}

} // namespace strata::metrics

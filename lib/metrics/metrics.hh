// Prometheus-style metrics for every Strata daemon: counters, gauges and histograms, optionally
// labelled, collected in a Registry that renders the text exposition format 0.0.4 for /metrics.
// Increments are lock-free (atomics only); locks are taken only when a metric or a labelled
// child is created and while rendering.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace strata::metrics {

// Content-Type of Registry::render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Thrown on misuse: invalid or duplicate names, wrong label count, bad buckets, negative
// counter increments.
class Error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

// A double updated with compare-and-swap on its bit pattern, so adds stay lock-free everywhere.
class AtomicDouble {
public:
    explicit AtomicDouble(double v = 0.0) noexcept : bits_(std::bit_cast<std::uint64_t>(v)) {}
    double load() const noexcept {
        return std::bit_cast<double>(bits_.load(std::memory_order_relaxed));
    }
    void store(double v) noexcept {
        bits_.store(std::bit_cast<std::uint64_t>(v), std::memory_order_relaxed);
    }
    void add(double delta) noexcept {
        std::uint64_t old = bits_.load(std::memory_order_relaxed);
        while (!bits_.compare_exchange_weak(
            old, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + delta),
            std::memory_order_relaxed)) {
        }
    }

private:
    static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
    std::atomic<std::uint64_t> bits_;
};

} // namespace detail

// Monotonic counter. Whole-number increments take a single fetch_add.
class Counter {
public:
    void inc() noexcept { whole_.fetch_add(1, std::memory_order_relaxed); }
    void inc(double v); // throws Error if v is negative or NaN
    double value() const noexcept;

private:
    std::atomic<std::uint64_t> whole_{0};
    detail::AtomicDouble fraction_;
};

class Gauge {
public:
    void set(double v) noexcept { value_.store(v); }
    void inc(double v = 1.0) noexcept { value_.add(v); }
    void dec(double v = 1.0) noexcept { value_.add(-v); }
    double value() const noexcept { return value_.load(); }

private:
    detail::AtomicDouble value_;
};

// Histogram with fixed upper bounds ("le", inclusive) plus the implicit +Inf bucket.
class Histogram {
public:
    // `bounds` must be finite and strictly increasing (checked by the Registry).
    explicit Histogram(std::vector<double> bounds);

    void observe(double v) noexcept;

    struct Snapshot {
        std::vector<std::uint64_t> cumulative; // one per bound, then +Inf (== count)
        double sum = 0.0;
        std::uint64_t count = 0;
    };
    // Counts are read bucket by bucket; `count` is the +Inf bucket, so the text stays
    // self-consistent even while other threads observe.
    Snapshot snapshot() const;
    const std::vector<double>& bounds() const noexcept { return bounds_; }

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_; // bounds_.size() + 1, not cumulative
    detail::AtomicDouble sum_;
};

// Prometheus' default latency buckets, in seconds: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> default_buckets();
// start, start+width, ... (count bounds)
std::vector<double> linear_buckets(double start, double width, std::size_t count);
// start, start*factor, ... (count bounds); e.g. byte sizes
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

// Name rules of the exposition format.
bool valid_metric_name(std::string_view name); // [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_label_name(std::string_view name);  // [a-zA-Z_][a-zA-Z0-9_]*, no "__" prefix

namespace detail {

// Orders children by label values and lets with() look them up without allocating.
struct ValuesLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return std::lexicographical_compare(
            a.begin(), a.end(), b.begin(), b.end(),
            [](std::string_view x, std::string_view y) { return x < y; });
    }
};

[[noreturn]] void throw_label_count(std::size_t want, std::size_t got);

} // namespace detail

// A metric with label names; with(values...) returns the child for one combination of label
// values (created on first use, then stable for the Registry's lifetime: keep the reference on
// hot paths).
template <class T>
class Family {
public:
    Family(std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make)
        : names_(std::move(label_names)), make_(std::move(make)) {}
    Family(const Family&) = delete;
    Family& operator=(const Family&) = delete;

    // Values in the order of label_names(), e.g. family.with({"GET", "200"}).
    T& with(std::initializer_list<std::string_view> values) {
        return with(std::span<const std::string_view>(values.begin(), values.size()));
    }
    T& with(std::span<const std::string_view> values) {
        if (values.size() != names_.size()) detail::throw_label_count(names_.size(), values.size());
        std::lock_guard lock(mu_);
        auto it = children_.find(values);
        if (it == children_.end()) {
            it = children_.emplace(std::vector<std::string>(values.begin(), values.end()), make_())
                     .first;
        }
        return *it->second;
    }
    T& with(std::span<const std::string> values) {
        std::vector<std::string_view> views(values.begin(), values.end());
        return with(std::span<const std::string_view>(views));
    }

    const std::vector<std::string>& label_names() const noexcept { return names_; }

    // Calls fn(values, child) for every child, ordered by label values.
    template <class F>
    void visit(F&& fn) const {
        std::lock_guard lock(mu_);
        for (const auto& [values, child] : children_)
            fn(values, *child);
    }

private:
    std::vector<std::string> names_;
    std::function<std::unique_ptr<T>()> make_;
    mutable std::mutex mu_;
    std::map<std::vector<std::string>, std::unique_ptr<T>, detail::ValuesLess> children_;
};

enum class Type { counter, gauge, histogram };

// Owns every metric of a process. Metrics are never removed, so the references handed out stay
// valid until the Registry is destroyed. All methods are thread-safe.
class Registry {
public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Each name (and for histograms name_bucket/_sum/_count) may be registered once; invalid
    // or duplicate names throw Error. An empty help string omits the # HELP line.
    Counter& counter(std::string_view name, std::string_view help);
    Gauge& gauge(std::string_view name, std::string_view help);
    Histogram& histogram(std::string_view name, std::string_view help,
                         std::vector<double> buckets = default_buckets());

    Family<Counter>& counter_family(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names);
    Family<Gauge>& gauge_family(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names);
    Family<Histogram>& histogram_family(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> buckets = default_buckets());

    // Values computed at render time (uptime, queue depth read from LMDB, ...). The function
    // runs on the rendering thread without any registry lock held; an exception it throws
    // propagates out of render().
    void gauge_callback(std::string_view name, std::string_view help, std::function<double()> fn);
    void counter_callback(std::string_view name, std::string_view help, std::function<double()> fn);

    // The whole registry in text exposition format 0.0.4, metrics sorted by name.
    std::string render() const;

private:
    using Callback = std::function<double()>;
    struct Entry {
        std::string name;
        std::string help;
        Type type;
        std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
                     std::unique_ptr<Family<Histogram>>, Callback>
            metric;
    };

    Entry& add(Entry entry);

    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
    std::map<std::string, std::string, std::less<>> series_owner_; // series name -> metric name
};

} // namespace strata::metrics

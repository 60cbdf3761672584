// Registration: name checks, collision checks between metrics, creation of the families.
#include "metrics/metrics.hh"

#include <cmath>
#include <fmt/format.h>
#include <set>

namespace strata::metrics {

namespace {

void check_labels(std::string_view metric, const std::vector<std::string>& names, Type type) {
    std::set<std::string_view> seen;
    for (const auto& n : names) {
        if (!valid_label_name(n)) {
            throw Error(fmt::format("metric {}: invalid label name \"{}\"", metric, n));
        }
        // "le" is the bucket bound the exposition adds to every histogram series.
        if (type == Type::histogram && n == "le") {
            throw Error(
                fmt::format("metric {}: label name \"le\" is reserved for histograms", metric));
        }
        if (!seen.insert(n).second) {
            throw Error(fmt::format("metric {}: duplicate label name \"{}\"", metric, n));
        }
    }
}

std::vector<double> check_buckets(std::string_view metric, std::vector<double> b) {
    if (!b.empty() && b.back() == INFINITY) b.pop_back(); // +Inf is always implied
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (!std::isfinite(b[i])) {
            throw Error(fmt::format("metric {}: bucket bounds must be finite", metric));
        }
        if (i > 0 && !(b[i - 1] < b[i])) {
            throw Error(
                fmt::format("metric {}: bucket bounds must be strictly increasing", metric));
        }
    }
    return b;
}

std::vector<std::string> series_names(const std::string& name, Type type) {
    if (type != Type::histogram) return {name};
    return {name, name + "_bucket", name + "_sum", name + "_count"};
}

template <class T>
std::unique_ptr<Family<T>> make_family(std::vector<std::string> labels) {
    auto family =
        std::make_unique<Family<T>>(std::move(labels), [] { return std::make_unique<T>(); });
    // Unlabelled metrics are a family with one child, created now so it renders as 0 at once.
    if (family->label_names().empty()) family->with({});
    return family;
}

std::unique_ptr<Family<Histogram>> make_histograms(std::vector<std::string> labels,
                                                   std::vector<double> bounds) {
    auto family =
        std::make_unique<Family<Histogram>>(std::move(labels), [bounds = std::move(bounds)] {
            return std::make_unique<Histogram>(bounds);
        });
    if (family->label_names().empty()) family->with({});
    return family;
}

} // namespace

Registry::Entry& Registry::add(Entry entry) {
    if (!valid_metric_name(entry.name)) {
        throw Error(fmt::format("invalid metric name \"{}\"", entry.name));
    }
    auto series = series_names(entry.name, entry.type);
    std::lock_guard lock(mu_);
    for (const auto& s : series) {
        if (auto it = series_owner_.find(s); it != series_owner_.end()) {
            throw Error(fmt::format("metric {} conflicts with already registered metric {}",
                                    entry.name, it->second));
        }
    }
    for (const auto& s : series)
        series_owner_.emplace(s, entry.name);
    auto name = entry.name;
    auto it = entries_.emplace(name, std::make_unique<Entry>(std::move(entry))).first;
    return *it->second;
}

Counter& Registry::counter(std::string_view name, std::string_view help) {
    return counter_family(name, help, {}).with({});
}

Gauge& Registry::gauge(std::string_view name, std::string_view help) {
    return gauge_family(name, help, {}).with({});
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> buckets) {
    return histogram_family(name, help, {}, std::move(buckets)).with({});
}

Family<Counter>& Registry::counter_family(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names) {
    check_labels(name, label_names, Type::counter);
    auto& e = add({std::string(name), std::string(help), Type::counter,
                   make_family<Counter>(std::move(label_names))});
    return *std::get<std::unique_ptr<Family<Counter>>>(e.metric);
}

Family<Gauge>& Registry::gauge_family(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
    check_labels(name, label_names, Type::gauge);
    auto& e = add({std::string(name), std::string(help), Type::gauge,
                   make_family<Gauge>(std::move(label_names))});
    return *std::get<std::unique_ptr<Family<Gauge>>>(e.metric);
}

Family<Histogram>& Registry::histogram_family(std::string_view name, std::string_view help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> buckets) {
    check_labels(name, label_names, Type::histogram);
    auto bounds = check_buckets(name, std::move(buckets));
    auto& e = add({std::string(name), std::string(help), Type::histogram,
                   make_histograms(std::move(label_names), std::move(bounds))});
    return *std::get<std::unique_ptr<Family<Histogram>>>(e.metric);
}

void Registry::gauge_callback(std::string_view name, std::string_view help,
                              std::function<double()> fn) {
    if (!fn) throw Error(fmt::format("metric {}: empty callback", name));
    add({std::string(name), std::string(help), Type::gauge, Callback(std::move(fn))});
}

void Registry::counter_callback(std::string_view name, std::string_view help,
                                std::function<double()> fn) {
    if (!fn) throw Error(fmt::format("metric {}: empty callback", name));
    add({std::string(name), std::string(help), Type::counter, Callback(std::move(fn))});
}

} // namespace strata::metrics

// Metric and label name rules of the Prometheus exposition format.
#include "metrics/metrics.hh"

#include <fmt/format.h>

namespace strata::metrics {

namespace {

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

} // namespace

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (!(is_alpha(c) || c == ':' || (i > 0 && is_digit(c)))) return false;
    }
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.starts_with("__")) return false; // "__" is reserved for Prometheus
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (!(is_alpha(c) || (i > 0 && is_digit(c)))) return false;
    }
    return true;
}

namespace detail {

void throw_label_count(std::size_t want, std::size_t got) {
    throw Error(fmt::format("expected {} label value(s), got {}", want, got));
}

} // namespace detail

} // namespace strata::metrics

// Rendering of the registry in the Prometheus text exposition format 0.0.4.
#include "metrics/metrics.hh"

#include <cmath>
#include <fmt/format.h>

namespace strata::metrics {

namespace {

void append_escaped(std::string& out, std::string_view s, bool escape_quote) {
    for (char c : s) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '"':
            if (escape_quote) {
                out += "\\\"";
                break;
            }
            [[fallthrough]];
        default:
            out += c;
        }
    }
}

// Go's ParseFloat syntax: shortest round-trip digits, +Inf/-Inf/NaN spelled out.
void append_value(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        fmt::format_to(std::back_inserter(out), "{}", v);
    }
}

struct Label {
    std::string_view name;
    std::string_view value;
};

void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, const Label* extra = nullptr) {
    if (names.empty() && !extra) return;
    out += '{';
    bool first = true;
    auto one = [&](std::string_view n, std::string_view v) {
        if (!first) out += ',';
        first = false;
        out += n;
        out += "=\"";
        append_escaped(out, v, true);
        out += '"';
    };
    for (std::size_t i = 0; i < names.size(); ++i)
        one(names[i], values[i]);
    if (extra) one(extra->name, extra->value);
    out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values,
                   double v, const Label* extra = nullptr) {
    out += name;
    out += suffix;
    append_labels(out, names, values, extra);
    out += ' ';
    append_value(out, v);
    out += '\n';
}

std::string_view type_name(Type t) {
    switch (t) {
    case Type::counter:
        return "counter";
    case Type::gauge:
        return "gauge";
    case Type::histogram:
        return "histogram";
    }
    return "untyped";
}

template <class T>
void append_simple(std::string& out, const std::string& name, const Family<T>& family) {
    family.visit([&](const std::vector<std::string>& values, const T& m) {
        append_sample(out, name, "", family.label_names(), values, m.value());
    });
}

void append_histograms(std::string& out, const std::string& name, const Family<Histogram>& family) {
    const auto& names = family.label_names();
    family.visit([&](const std::vector<std::string>& values, const Histogram& h) {
        auto snap = h.snapshot();
        const auto& bounds = h.bounds();
        std::string le;
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
            le.clear();
            if (i < bounds.size()) {
                append_value(le, bounds[i]);
            } else {
                le = "+Inf";
            }
            Label extra{"le", le};
            append_sample(out, name, "_bucket", names, values,
                          static_cast<double>(snap.cumulative[i]), &extra);
        }
        append_sample(out, name, "_sum", names, values, snap.sum);
        append_sample(out, name, "_count", names, values, static_cast<double>(snap.count));
    });
}

} // namespace

std::string Registry::render() const {
    // Entries are never removed: render from a snapshot of pointers without holding mu_, so
    // callbacks may take their own locks (or even register metrics) safely.
    std::vector<const Entry*> entries;
    {
        std::lock_guard lock(mu_);
        entries.reserve(entries_.size());
        for (const auto& [name, e] : entries_)
            entries.push_back(e.get());
    }
    std::string out;
    for (const Entry* e : entries) {
        if (!e->help.empty()) {
            out += "# HELP ";
            out += e->name;
            out += ' ';
            append_escaped(out, e->help, false);
            out += '\n';
        }
        out += "# TYPE ";
        out += e->name;
        out += ' ';
        out += type_name(e->type);
        out += '\n';
        std::visit(
            [&](const auto& m) {
                using M = std::decay_t<decltype(m)>;
                if constexpr (std::is_same_v<M, Callback>) {
                    append_sample(out, e->name, "", {}, {}, m());
                } else if constexpr (std::is_same_v<M, std::unique_ptr<Family<Histogram>>>) {
                    append_histograms(out, e->name, *m);
                } else {
                    append_simple(out, e->name, *m);
                }
            },
            e->metric);
    }
    return out;
}

} // namespace strata::metrics

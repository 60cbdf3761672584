#include "proxy_config.hh"

#include "text.hh"

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>

namespace strata::gatewayd {

namespace {

using text::lower;

std::vector<std::string_view> words(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t'))
            ++i;
        std::size_t j = i;
        while (j < text.size() && text[j] != ' ' && text[j] != '\t')
            ++j;
        if (j > i) out.push_back(text.substr(i, j - i));
        i = j;
    }
    return out;
}

[[noreturn]] void bad(std::string_view what, std::string_view word) {
    throw std::invalid_argument(std::string(what) + ": \"" + std::string(word) + "\"");
}

std::uint64_t number(std::string_view key, std::string_view v, std::uint64_t min,
                     std::uint64_t max) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max)
        throw std::invalid_argument(std::string(key) + " wants a number from " +
                                    std::to_string(min) + " to " + std::to_string(max) +
                                    ", not \"" + std::string(v) + "\"");
    return n;
}

bool name_ok(std::string_view n) {
    return !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
    });
}

bool target_ok(std::string_view t) {
    if (t.starts_with("unix:/")) return t.size() > 6 && t.size() < 108 + 5;
    if (!t.starts_with("http://")) return false;
    std::string_view hp = t.substr(7);
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view host = hp.substr(0, colon), port = hp.substr(colon + 1);
    if (host.front() == '[' ? host.back() != ']' : host.find_first_of("[]/") != host.npos)
        return false;
    std::uint32_t p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    return ec == std::errc() && end == port.data() + port.size() && p >= 1 && p <= 65535;
}

bool token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

// A path prefix as routes hold it: starts with '/', no trailing '/' (except "/" itself), no
// empty, "." or ".." segment, no control characters.
std::string normal_prefix(std::string_view p, std::string_view what) {
    if (p.empty() || p.front() != '/') bad(std::string(what) + " must start with '/'", p);
    for (char c : p)
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f || c == '?' || c == '#')
            bad(std::string(what) + " has a character paths cannot hold", p);
    std::string s(p);
    while (s.size() > 1 && s.back() == '/')
        s.pop_back();
    std::size_t i = 1;
    while (i < s.size()) {
        std::size_t j = s.find('/', i);
        if (j == std::string::npos) j = s.size();
        std::string_view seg(s.data() + i, j - i);
        if (seg.empty() || seg == "." || seg == "..")
            bad(std::string(what) + " has an empty, \".\" or \"..\" segment", p);
        i = j + 1;
    }
    return s;
}

bool prefix_matches(std::string_view prefix, std::string_view path) {
    if (prefix == "/") return !path.empty() && path.front() == '/';
    return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

// The host part of a Host header: lower case, without the port.
std::string host_of(std::string_view h) {
    if (!h.empty() && h.front() == '[') {
        auto close = h.find(']');
        return lower(h.substr(0, close == h.npos ? h.size() : close + 1));
    }
    return lower(h.substr(0, h.find(':')));
}

} // namespace

PoolSpec parse_pool(std::string_view text) {
    auto w = words(text);
    if (w.empty()) throw std::invalid_argument("a pool needs a name and members");
    PoolSpec p;
    if (!name_ok(w[0])) bad("a pool name is 1-64 of A-Z a-z 0-9 - _ .", w[0]);
    p.name = w[0];
    std::set<std::string_view> seen;
    for (std::size_t i = 1; i < w.size(); ++i) {
        std::string_view word = w[i];
        if (word.starts_with("weight=")) {
            if (p.members.empty()) bad("weight= follows the member it weighs", word);
            p.members.back().weight = static_cast<int>(number("weight", word.substr(7), 1, 100));
            continue;
        }
        if (target_ok(word)) {
            p.members.push_back({std::string(word), 1});
            continue;
        }
        auto eq = word.find('=');
        if (eq == std::string_view::npos || eq == 0)
            bad("not a member (unix:/PATH or http://HOST:PORT) nor an option", word);
        std::string_view key = word.substr(0, eq), v = word.substr(eq + 1);
        auto num = [&](std::uint64_t min, std::uint64_t max) { return number(key, v, min, max); };
        if (!seen.insert(key).second) bad(std::string(key) + " given twice", word);
        if (key == "balance") {
            if (v == "round_robin")
                p.balance = Balance::round_robin;
            else if (v == "least_conn")
                p.balance = Balance::least_conn;
            else if (v == "ip_hash")
                p.balance = Balance::ip_hash;
            else if (v == "hash")
                p.balance = Balance::hash;
            else
                bad("balance is round_robin, least_conn, ip_hash or hash", word);
        } else if (key == "hash") {
            auto colon = v.find(':');
            std::string_view kind = v.substr(0, colon);
            std::string_view name = colon == v.npos ? "" : v.substr(colon + 1);
            if (kind == "uri" && colon == v.npos) {
                p.hash.kind = HashKey::Kind::uri;
            } else if ((kind == "header" || kind == "cookie") && !name.empty() &&
                       name.size() <= 128 && std::all_of(name.begin(), name.end(), token_char)) {
                p.hash.kind = kind == "header" ? HashKey::Kind::header : HashKey::Kind::cookie;
                p.hash.name = name;
            } else {
                bad("hash is uri, header:NAME or cookie:NAME", word);
            }
        } else if (key == "health") {
            // A request-target as it goes on the wire: RFC 3986 path and query characters.
            if (v.empty() || v.front() != '/' || v.size() > 1024 ||
                !std::all_of(v.begin(), v.end(), [](char c) {
                    return token_char(c) || std::string_view("._~!$&'()*+,;=:@/?%").find(c) !=
                                                std::string_view::npos;
                }))
                bad("health wants a path (/PATH, URL characters only)", word);
            p.health.path = v;
        } else if (key == "health_interval_ms") {
            p.health.interval_ms = static_cast<std::uint32_t>(num(10, 3'600'000));
        } else if (key == "health_timeout_ms") {
            p.health.timeout_ms = static_cast<std::uint32_t>(num(1, 600'000));
        } else if (key == "rise") {
            p.health.rise = static_cast<int>(num(1, 100));
        } else if (key == "fall") {
            p.health.fall = static_cast<int>(num(1, 100));
        } else if (key == "eject_after") {
            p.outlier.eject_after = static_cast<int>(num(0, 1000));
        } else if (key == "eject_ms") {
            p.outlier.eject_ms = static_cast<std::uint32_t>(num(1, 3'600'000));
        } else if (key == "eject_max_ms") {
            p.outlier.eject_max_ms = static_cast<std::uint32_t>(num(1, 86'400'000));
        } else if (key == "eject_max_percent") {
            p.outlier.max_percent = static_cast<int>(num(0, 100));
        } else if (key == "retries") {
            p.retry.retries = static_cast<int>(num(0, 5));
        } else if (key == "retry_5xx") {
            if (v != "on" && v != "off") bad("retry_5xx is on or off", word);
            p.retry.on_5xx = v == "on";
        } else if (key == "retry_budget") {
            p.retry.budget_percent = static_cast<int>(num(0, 100));
        } else if (key == "retry_min_per_s") {
            p.retry.min_per_second = static_cast<int>(num(0, 10000));
        } else {
            bad("not a member (unix:/PATH or http://HOST:PORT) nor a pool option", word);
        }
    }
    if (p.members.empty()) throw std::invalid_argument("pool " + p.name + " has no members");
    if (p.members.size() > 256)
        throw std::invalid_argument("pool " + p.name + ": over 256 members");
    if (seen.count("hash") && !seen.count("balance")) p.balance = Balance::hash;
    if (p.balance == Balance::hash && !seen.count("hash"))
        throw std::invalid_argument("pool " + p.name + ": balance=hash needs hash=KEY");
    if (p.balance != Balance::hash && seen.count("hash"))
        throw std::invalid_argument("pool " + p.name + ": hash= goes with balance=hash");
    if (p.health.path.empty())
        for (auto k : {"health_interval_ms", "health_timeout_ms", "rise", "fall"})
            if (seen.count(k))
                throw std::invalid_argument("pool " + p.name + ": " + k + "= needs health=/PATH");
    if (p.outlier.eject_max_ms < p.outlier.eject_ms)
        throw std::invalid_argument("pool " + p.name + ": eject_max_ms is below eject_ms");
    return p;
}

RouteSpec parse_route(std::string_view text) {
    auto w = words(text);
    if (w.empty()) throw std::invalid_argument("a route needs a path prefix and pool=NAME");
    RouteSpec r;
    r.prefix = normal_prefix(w[0], "a route's path prefix");
    std::set<std::string_view> seen;
    for (std::size_t i = 1; i < w.size(); ++i) {
        std::string_view word = w[i];
        auto eq = word.find('=');
        if (eq == std::string_view::npos || eq == 0) bad("not an option KEY=VALUE", word);
        std::string_view key = word.substr(0, eq), v = word.substr(eq + 1);
        if (!seen.insert(key).second) bad("option given twice", word);
        if (key == "pool") {
            if (!name_ok(v)) bad("pool= wants a pool name", word);
            r.pool = v;
        } else if (key == "host") {
            if (v.empty() || v.size() > 253 || !std::all_of(v.begin(), v.end(), [](char c) {
                    return token_char(c) || c == '.' || c == '[' || c == ']' || c == ':';
                }))
                bad("host= wants a host name", word);
            r.host = host_of(v);
        } else if (key == "methods") {
            std::size_t s = 0;
            while (s <= v.size()) {
                auto comma = v.find(',', s);
                std::string_view m = v.substr(s, comma == v.npos ? v.npos : comma - s);
                if (m.empty() || m.size() > 16 ||
                    !std::all_of(m.begin(), m.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
                    bad("methods= wants upper-case methods separated by commas", word);
                r.methods.emplace_back(m);
                if (comma == v.npos) break;
                s = comma + 1;
            }
        } else if (key == "rewrite") {
            r.rewrite = normal_prefix(v, "rewrite=");
        } else if (key == "timeout_ms") {
            r.timeout_ms = static_cast<std::uint32_t>(number("timeout_ms", v, 1, 3'600'000));
        } else if (key == "max_body") {
            r.max_body = number("max_body", v, 0, std::uint64_t{1} << 40);
        } else if (key == "auth") {
            if (v == "none")
                r.auth = AuthMode::none;
            else if (v == "optional")
                r.auth = AuthMode::optional;
            else if (v == "required")
                r.auth = AuthMode::required;
            else
                bad("auth is none, optional or required", word);
        } else if (key == "rate") {
            auto slash = v.find('/');
            std::string_view unit = slash == v.npos ? "" : v.substr(slash + 1);
            double per = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
            if (per == 0) bad("rate= wants N/s, N/m or N/h", word);
            auto n = number("rate", v.substr(0, slash), 1, 1'000'000);
            if (!r.rate) r.rate = RateSpec{};
            r.rate->per_second = static_cast<double>(n) / per;
            if (!r.rate->burst) r.rate->burst = n;
        } else if (key == "burst") {
            if (!r.rate) r.rate = RateSpec{};
            r.rate->burst = number("burst", v, 1, 1'000'000);
        } else if (key == "rate_key") {
            if (!r.rate) r.rate = RateSpec{};
            if (v == "ip")
                r.rate->key = RateKey::ip;
            else if (v == "user")
                r.rate->key = RateKey::user;
            else if (v == "api_key")
                r.rate->key = RateKey::api_key;
            else if (v == "route")
                r.rate->key = RateKey::route;
            else
                bad("rate_key is ip, user, api_key or route", word);
        } else if (key == "allow" || key == "deny") {
            try {
                (key == "allow" ? r.addresses.allow : r.addresses.deny) = AddressList::parse(v);
            } catch (const std::invalid_argument& e) {
                bad(std::string(key) + "= wants CIDR blocks separated by commas (" + e.what() + ")",
                    word);
            }
        } else if (key == "require_headers" || key == "forbid_headers" || key == "headers") {
            auto& list = key == "require_headers"  ? r.require_headers
                         : key == "forbid_headers" ? r.forbid_headers
                                                   : r.header_sets;
            std::size_t s = 0;
            while (s <= v.size()) {
                auto comma = v.find(',', s);
                std::string_view h = v.substr(s, comma == v.npos ? v.npos : comma - s);
                if (key == "headers" ? !name_ok(h)
                                     : h.empty() || h.size() > 128 ||
                                           !std::all_of(h.begin(), h.end(), token_char))
                    bad(std::string(key) + "= wants names separated by commas", word);
                list.emplace_back(h);
                if (comma == v.npos) break;
                s = comma + 1;
            }
        } else if (key == "scopes") {
            std::size_t s = 0;
            while (s <= v.size()) {
                auto comma = v.find(',', s);
                std::string_view sc = v.substr(s, comma == v.npos ? v.npos : comma - s);
                if (sc.empty() || sc.size() > 64 || !std::all_of(sc.begin(), sc.end(), [](char c) {
                        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' ||
                               c == '.' || c == '_' || c == '-';
                    }))
                    bad("scopes= wants scopes of a-z 0-9 : . _ - separated by commas", word);
                r.scopes.emplace_back(sc);
                if (comma == v.npos) break;
                s = comma + 1;
            }
        } else if (key == "cors") {
            if (!name_ok(v)) bad("cors= wants a policy name", word);
            r.cors = v;
        } else if (key == "compress") {
            if (v != "on" && v != "off") bad("compress is on or off", word);
            r.compress = v == "on";
        } else if (key == "websocket") {
            if (v != "on" && v != "off") bad("websocket is on or off", word);
            r.websocket = v == "on";
        } else if (key == "cache") {
            if (v != "on" && v != "off") bad("cache is on or off", word);
            r.cache = v == "on";
        } else {
            bad("unknown route option", word);
        }
    }
    if (r.pool.empty()) throw std::invalid_argument("route " + r.prefix + " has no pool=NAME");
    if (r.rate && r.rate->per_second == 0)
        throw std::invalid_argument("route " + r.prefix + ": burst= and rate_key= need rate=");
    return r;
}

void check_proxy_config(const ProxySpec& spec) {
    std::set<std::string> names;
    for (const auto& p : spec.pools)
        if (!names.insert(p.name).second)
            throw std::invalid_argument("pool " + p.name + " is defined twice");
    std::set<std::pair<std::string, std::string>> keys;
    for (const auto& r : spec.routes) {
        for (const auto& set : r.header_sets)
            if (!spec.header_rules.count(set))
                throw std::invalid_argument("route " + r.prefix + " names header rules " + set +
                                            ", which proxy.header_rules does not define");
        if (!r.cors.empty() && !spec.cors.count(r.cors))
            throw std::invalid_argument("route " + r.prefix + " names CORS policy " + r.cors +
                                        ", which proxy.cors does not define");
        if (!names.count(r.pool))
            throw std::invalid_argument("route " + r.prefix + " names pool " + r.pool +
                                        ", which proxy.pools does not define");
        if (!keys.insert({r.host, r.prefix}).second)
            throw std::invalid_argument("two routes for " + (r.host.empty() ? "any host" : r.host) +
                                        " and prefix " + r.prefix);
    }
}

RouteTable::RouteTable(std::vector<RouteSpec> routes) : routes_(std::move(routes)) {
    std::stable_sort(routes_.begin(), routes_.end(), [](const RouteSpec& a, const RouteSpec& b) {
        if (a.prefix.size() != b.prefix.size()) return a.prefix.size() > b.prefix.size();
        return !a.host.empty() && b.host.empty();
    });
}

const RouteSpec* RouteTable::match(std::string_view host_header, std::string_view path) const {
    const std::string host = host_of(host_header);
    for (const auto& r : routes_)
        if ((r.host.empty() || r.host == host) && prefix_matches(r.prefix, path)) return &r;
    return nullptr;
}

std::string rewrite_path(const RouteSpec& route, std::string_view path) {
    if (!route.rewrite) return std::string(path);
    std::string_view rest = route.prefix == "/" ? path.substr(1) : path.substr(route.prefix.size());
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    std::string out = *route.rewrite;
    if (!rest.empty()) {
        if (out.back() != '/') out += '/';
        out += rest;
    } else if (path.size() > route.prefix.size() && path.back() == '/' && out.back() != '/') {
        out += '/'; // "/app/" -> rewrite "/x" keeps the trailing slash: "/x/"
    }
    return out;
}

} // namespace strata::gatewayd

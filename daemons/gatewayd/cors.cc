#include "cors.hh"

#include "header_rules.hh"
#include "text.hh"

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>

namespace strata::gatewayd {

namespace {

using text::lower;
using text::split;
using text::token;

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : ", ") + s;
    return out;
}

// "https://host[:port]", lower case, no path: what browsers send in Origin.
bool origin_syntax(std::string_view o) {
    auto colon = o.find("://");
    if (colon == o.npos || colon == 0) return false;
    std::string_view scheme = o.substr(0, colon), rest = o.substr(colon + 3);
    return token(scheme) && !rest.empty() && rest.find_first_of("/?# ") == rest.npos;
}

// The CORS-safelisted request headers never need listing (Fetch: CORS-safelisted request
// header), whatever their values.
bool safelisted(std::string_view lower_name) {
    return lower_name == "accept" || lower_name == "accept-language" ||
           lower_name == "content-language" || lower_name == "content-type";
}

} // namespace

bool CorsPolicy::origin_allowed(std::string_view origin) const {
    if (origin.empty() || origin == "null") return false; // opaque origins are nobody's
    const std::string o = lower(origin);
    for (const auto& p : origins) {
        if (p == "*" || p == o) return true;
        auto star = p.find("://*.");
        if (star == std::string::npos) continue;
        // "https://*.example.com": same scheme, a host ending in ".example.com" (and at
        // least one label before it).
        std::string_view scheme = std::string_view(p).substr(0, star + 3);
        std::string_view suffix = std::string_view(p).substr(star + 4); // ".example.com"
        if (o.size() > scheme.size() + suffix.size() && o.starts_with(scheme) &&
            o.ends_with(suffix) &&
            o.substr(scheme.size(), o.size() - scheme.size() - suffix.size()).find_first_of(":/") ==
                std::string::npos)
            return true;
    }
    return false;
}

http::Response CorsPolicy::preflight(std::string_view origin, std::string_view method,
                                     std::optional<std::string_view> request_headers) const {
    auto refuse = [](const std::string& why) {
        auto r = http::Response::error(403, "cors_refused", why);
        r.headers.emplace("Vary", "Origin");
        return r;
    };
    if (!origin_allowed(origin)) return refuse("this origin may not call this route");
    if (std::find(methods.begin(), methods.end(), method) == methods.end())
        return refuse("the method " + std::string(method) + " is not allowed from other origins");
    std::vector<std::string> asked =
        request_headers ? split(*request_headers, ',') : std::vector<std::string>{};
    for (auto& h : asked) {
        h = lower(h);
        if (!safelisted(h) && std::find(headers.begin(), headers.end(), h) == headers.end())
            return refuse("the header " + h + " is not allowed from other origins");
    }
    http::Response r;
    r.status = 204;
    r.headers.emplace(
        "Access-Control-Allow-Origin",
        origins.size() == 1 && origins[0] == "*" && !credentials ? "*" : std::string(origin));
    r.headers.emplace("Access-Control-Allow-Methods", join(methods));
    if (!asked.empty()) r.headers.emplace("Access-Control-Allow-Headers", join(asked));
    if (credentials) r.headers.emplace("Access-Control-Allow-Credentials", "true");
    r.headers.emplace("Access-Control-Max-Age", std::to_string(max_age));
    r.headers.emplace("Vary",
                      "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    return r;
}

void CorsPolicy::decorate(http::Headers& h, std::string_view origin) const {
    for (auto it = h.begin(); it != h.end();)
        it = lower(it->first).starts_with("access-control-") ? h.erase(it) : std::next(it);
    if (!origin_allowed(origin)) return;
    bool any = origins.size() == 1 && origins[0] == "*" && !credentials;
    h.emplace("Access-Control-Allow-Origin", any ? "*" : std::string(origin));
    if (credentials) h.emplace("Access-Control-Allow-Credentials", "true");
    if (!expose.empty()) h.emplace("Access-Control-Expose-Headers", join(expose));
    if (!any) add_vary(h, "Origin"); // the answer differs by Origin: caches must know
}

std::pair<std::string, CorsPolicy> parse_cors_policy(std::string_view text) {
    auto words = split(text, ' ');
    auto bad = [&](std::string_view why) -> std::invalid_argument {
        return std::invalid_argument(std::string(why) + ": \"" + std::string(text) + "\"");
    };
    if (words.empty() || words[0].size() > 64 ||
        !std::all_of(words[0].begin(), words[0].end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.';
        }))
        throw bad("a CORS policy starts with its name (1-64 of A-Z a-z 0-9 - _ .)");
    CorsPolicy p;
    std::set<std::string> seen;
    for (std::size_t i = 1; i < words.size(); ++i) {
        const std::string& w = words[i];
        auto eq = w.find('=');
        if (eq == std::string::npos) throw bad("not an option KEY=VALUE (" + w + ")");
        std::string key = w.substr(0, eq), v = w.substr(eq + 1);
        if (!seen.insert(key).second) throw bad(key + "= given twice");
        if (key == "origins") {
            for (auto& o : split(v, ',')) {
                o = lower(o);
                if (o != "*" && !origin_syntax(o))
                    throw bad("origins= wants scheme://host[:port], https://*.domain or *");
                p.origins.push_back(o);
            }
        } else if (key == "methods") {
            p.methods = split(v, ',');
            for (const auto& m : p.methods)
                if (!token(m) || lower(m) == m) throw bad("methods= wants upper-case methods");
        } else if (key == "headers" || key == "expose") {
            auto list = split(v, ',');
            for (auto& h : list) {
                if (!token(h)) throw bad(key + "= wants header names");
                if (key == "headers") h = lower(h);
            }
            (key == "headers" ? p.headers : p.expose) = std::move(list);
        } else if (key == "credentials") {
            if (v != "true" && v != "false") throw bad("credentials= is true or false");
            p.credentials = v == "true";
        } else if (key == "max_age") {
            unsigned n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n > 86400)
                throw bad("max_age= wants seconds, 0-86400");
            p.max_age = n;
        } else {
            throw bad("unknown CORS option " + key);
        }
    }
    if (p.origins.empty()) throw bad("a CORS policy needs origins=");
    if (p.credentials && std::find(p.origins.begin(), p.origins.end(), "*") != p.origins.end())
        throw bad("origins=* with credentials=true would let any site act as the user");
    return {words[0], std::move(p)};
}

CorsPolicies parse_cors_policies(const std::vector<std::string>& items) {
    CorsPolicies out;
    for (const auto& item : items) {
        auto [name, policy] = parse_cors_policy(item);
        if (!out.emplace(name, std::move(policy)).second)
            throw std::invalid_argument("CORS policy " + name + " is defined twice");
    }
    return out;
}

bool is_preflight(const http::Request& r) {
    return r.method == "OPTIONS" && r.header("Origin") && r.header("Access-Control-Request-Method");
}

} // namespace strata::gatewayd

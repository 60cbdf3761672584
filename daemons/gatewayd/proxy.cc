#include "proxy.hh"

#include "auth/api_key.hh"
#include "compression.hh"
#include "header_name_set.hh"
#include "http_client/async_client.hh"
#include "request_id.hh"
#include "text.hh"
#include "upstream_pool.hh"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <set>
#include <string>
#include <strings.h>

namespace strata::gatewayd {

namespace {

using http_client::ErrorKind;

// Lower-case names of the headers a proxy never forwards (RFC 9110 7.6.1, plus what the
// client library sets itself).
const HeaderNameSet not_forwarded = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
    "x-strata-caller",
};

bool idempotent(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS";
}

// `digits` random lower-case hex digits, never all zeros (W3C trace context forbids them).
// Request and trace ids need to be unique, not secret: splitmix64 from a random seed (a
// Mersenne twister cost more than the rest of the request's headers).
std::string random_hex(std::size_t digits) {
    static thread_local std::uint64_t state =
        (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
    auto next = [] {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    static constexpr char hex[] = "0123456789abcdef";
    std::string id(digits, '0');
    while (id.find_first_not_of('0') == std::string::npos)
        for (std::size_t i = 0; i < digits; i += 16) {
            std::uint64_t v = next();
            for (std::size_t j = 0; j < 16 && i + j < digits; ++j, v >>= 4)
                id[i + j] = hex[v & 15];
        }
    return id;
}

bool lower_hex(std::string_view s, std::size_t n) {
    return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string_view::npos &&
           s.find_first_not_of('0') != std::string_view::npos;
}

// W3C Trace Context: the gateway is a hop of the trace, so the upstream gets the client's
// trace id and flags with a new parent id (the gateway's span); a missing or malformed
// traceparent starts a new trace, not sampled (flags 00: the gateway records no spans).
std::string next_traceparent(std::optional<std::string_view> in) {
    if (in && in->size() >= 55 && in->substr(0, 3) == "00-" && (*in)[35] == '-' &&
        (*in)[52] == '-' && lower_hex(in->substr(3, 32), 32) && lower_hex(in->substr(36, 16), 16) &&
        in->substr(53, 2).find_first_not_of("0123456789abcdef") == std::string_view::npos &&
        (in->size() == 55 || (*in)[55] == '-'))
        return "00-" + std::string(in->substr(3, 32)) + "-" + random_hex(16) + "-" +
               std::string(in->substr(53, 2));
    return "00-" + random_hex(32) + "-" + random_hex(16) + "-00";
}

// Percent-encodes what may not appear raw in a path (keeps '/' and RFC 3986 pchar).
void encode_into(std::string& out, std::string_view s, bool query) {
    static const char* hex = "0123456789ABCDEF";
    for (unsigned char c : s) {
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '!' || c == '$' ||
                    c == '\'' || c == '(' || c == ')' || c == '*' || c == ',' || c == ';' ||
                    c == ':' || c == '@' ||
                    (!query && (c == '/' || c == '=' || c == '&' || c == '+'));
        if (keep) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
}

// The upstream's request-target: the (rewritten) decoded path encoded again, then the query
// exactly as the client sent it when the server kept it (order and encoding preserved),
// else rebuilt from the decoded arguments.
std::string origin_form(std::string_view path, const http::Request& req) {
    std::string out;
    encode_into(out, path, false);
    std::string_view target = req.target;
    if (auto mark = target.find('?'); mark != target.npos) {
        std::string_view raw = target.substr(mark);
        // Bytes that may not appear in a request line are never sent raw: rebuilt below.
        if (std::all_of(raw.begin(), raw.end(), [](char c) {
                return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
            }))
            return out + std::string(raw);
    } else if (!target.empty()) {
        return out; // no query
    }
    const auto& q = req.query;
    char sep = '?';
    for (const auto& [k, v] : q) {
        out += sep;
        sep = '&';
        encode_into(out, k, true);
        if (!v.empty()) {
            out += '=';
            encode_into(out, v, true);
        }
    }
    return out;
}

// Headers of the client's or the upstream's message that are replaced, not passed on.
const HeaderNameSet replaced_upstream = {"x-request-id", "traceparent", "x-forwarded-host",
                                         "x-forwarded-proto"};
const HeaderNameSet replaced_downstream = {"x-request-id", "date"};

// Header names listed in Connection: are hop-by-hop too. Works on both header types (the
// server's multimap, the client's list of pairs).
template <class HeaderList>
std::set<std::string, http::CaseLess> connection_tokens(const HeaderList& headers) {
    std::set<std::string, http::CaseLess> out;
    for (const auto& [name, value] : headers) {
        if (strcasecmp(name.c_str(), "connection") != 0) continue;
        std::string_view v = value;
        std::size_t s = 0;
        while (s < v.size()) {
            auto comma = v.find(',', s);
            std::string_view t = v.substr(s, comma == v.npos ? v.npos : comma - s);
            while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
                t.remove_prefix(1);
            while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
                t.remove_suffix(1);
            if (!t.empty()) out.emplace(t);
            if (comma == v.npos) break;
            s = comma + 1;
        }
    }
    return out;
}

// The bucket a request draws from (RateKey): "ip:ADDR" (unix-socket clients by uid),
// "user:ID", "key:ID", or "" for the whole route.
std::string rate_key(RateKey kind, const http::Request& req, std::optional<std::uint64_t> user,
                     std::optional<std::string_view> authz) {
    if (kind == RateKey::route) return {};
    if (kind == RateKey::api_key && authz && authz->starts_with("Bearer sk_"))
        if (auto key = auth::parse_api_key(authz->substr(7)))
            return "key:" + std::to_string(key->id);
    if ((kind == RateKey::user || kind == RateKey::api_key) && user)
        return "user:" + std::to_string(*user);
    if (!req.remote_address.empty()) return "ip:" + req.remote_address;
    return req.peer ? "uid:" + std::to_string(req.peer->uid) : "local";
}

// A claim as it may go into a header: percent-encoded outside RFC 3986's unreserved set
// (a JWT's sub may hold anything, CR and LF included).
std::string header_safe(std::string_view v) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : v) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

void add_rate_headers(http::Headers& h, const RateLimiter::Verdict& v) {
    h.emplace("RateLimit-Limit", std::to_string(v.limit));
    h.emplace("RateLimit-Remaining", std::to_string(v.remaining));
    h.emplace("RateLimit-Reset",
              std::to_string(static_cast<std::uint64_t>(std::ceil(v.reset_seconds))));
}

} // namespace

bool request_id_ok(std::string_view v) {
    return !v.empty() && v.size() <= 128 && std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == ':' || c == '-';
    });
}

std::string new_request_id() {
    return random_hex(32);
}

ProxyMetrics::ProxyMetrics(metrics::Registry& registry)
    : requests(&registry.counter_family(
          "strata_gateway_requests_total",
          "Answers of the proxy's routes, by route ([host]prefix), pool and status",
          {"route", "pool", "code"})),
      upstream_seconds(&registry.histogram_family(
          "strata_gateway_upstream_duration_seconds",
          "Time of each exchange with an upstream member, answered or not", {"pool", "member"})),
      upstream_errors(&registry.counter_family(
          "strata_gateway_upstream_errors_total",
          "Upstream exchanges that got no answer, by member and why", {"pool", "member", "kind"})),
      cache{&registry.counter_family(
                "strata_gateway_cache_requests_total",
                "GET and HEAD requests of cached routes, by route and what the cache did",
                {"route", "result"}),
            &registry.gauge("strata_gateway_cache_bytes",
                            "Bytes held by the response cache (answers, headers, keys)")},
      upstream_retries(&registry.counter_family(
          "strata_gateway_upstream_retries_total",
          "Requests sent again to another member of the pool (retries=, retry budget)", {"pool"})),
      upstream_healthy(&registry.gauge_family(
          "strata_gateway_upstream_healthy",
          "1 while a pool member takes requests (health checks up, not ejected), else 0",
          {"pool", "member"})),
      upstream_ejections(&registry.counter_family(
          "strata_gateway_upstream_ejections_total",
          "Members left out of their pool for a while after failures in a row",
          {"pool", "member"})) {}

struct Proxy::Pool : UpstreamPool {
    using UpstreamPool::UpstreamPool;
    // strata_gateway_upstream_seconds{pool,upstream} of each member, looked up once.
    std::vector<metrics::Histogram*> seconds;
};

// One proxied request: what goes up, who answers, which members were tried.
struct Exchange {
    explicit Exchange(http::Reply r) : reply(std::move(r)) {}
    http_client::Request up;
    http::Reply reply;
    std::string request_id;
    Proxy::Pool* pool = nullptr;
    std::vector<std::size_t> tried;
    std::string key;                           // what ip_hash or hash= hashes (balancer.hh)
    bool retry = false;                        // idempotent: may go to other members
    std::optional<RateLimiter::Verdict> limit; // the route's rate limit, for the answer
    std::shared_ptr<AccessRecord> note;        // the access log's, when there is one
    bool websocket = false;                    // a WebSocket handshake (websocket=on)
};

Proxy::Proxy(uv_loop_t* loop, ProxySpec proxy_spec, std::optional<auth::SessionVerifier> verifier,
             ProxyOptions options)
    : loop_(loop), table_({}), verifier_(std::move(verifier)), jwt_(std::move(options.jwt)),
      denied_(options.denied && !options.denied->empty() ? options.denied : nullptr),
      websockets_(options.websockets) {
    if (!options.api_key_verifier.empty())
        keys_ =
            std::make_unique<ApiKeyChecker>(loop, options.api_key_verifier, options.api_key_cache);
    check_proxy_config(proxy_spec);
    cors_ = std::move(proxy_spec.cors); // route_shape_ points into it
    table_ = RouteTable(std::move(proxy_spec.routes));
    std::map<std::string, Pool*> by_name;
    http_client::Options o;
    o.max_connections = options.connections_per_member;
    o.connect_timeout = std::chrono::milliseconds(5000);
    o.timeout = std::chrono::milliseconds(0); // each route sets its own
    o.max_response_bytes = std::size_t{256} << 20;
    PoolMetrics pm;
    if (options.metrics)
        pm = {options.metrics->upstream_retries, options.metrics->upstream_healthy,
              options.metrics->upstream_ejections};
    for (const auto& spec : proxy_spec.pools) {
        auto p = std::make_unique<Pool>(loop_, spec, o, pm);
        if (options.metrics && options.metrics->upstream_seconds)
            for (const auto& m : p->members)
                p->seconds.push_back(
                    &options.metrics->upstream_seconds->with({spec.name, m.target}));
        by_name[spec.name] = p.get();
        pools_.push_back(std::move(p));
    }
    if (options.metrics) {
        requests_ = options.metrics->requests;
        upstream_seconds_ = options.metrics->upstream_seconds;
        upstream_errors_ = options.metrics->upstream_errors;
    }
    route_codes_.resize(table_.routes().size());
    for (const auto& r : table_.routes()) {
        route_label_.push_back(r.host + r.prefix);
        route_pool_.push_back(by_name.at(r.pool));
        route_limiter_.push_back(
            r.rate ? std::make_unique<RateLimiter>(r.rate->per_second, r.rate->burst) : nullptr);
        RouteShape shape;
        for (const auto& set : r.header_sets) {
            const auto& rules = proxy_spec.header_rules.at(set);
            shape.rules.insert(shape.rules.end(), rules.begin(), rules.end());
        }
        if (!r.cors.empty()) shape.cors = &cors_.at(r.cors);
        shape.compress = r.compress.value_or(proxy_spec.compress);
        route_shape_.push_back(std::move(shape));
        if (r.cache && !cache_)
            cache_ = std::make_unique<CacheLayer>(
                options.cache_max_bytes, options.cache_max_object_bytes,
                options.metrics ? options.metrics->cache : CacheMetrics{});
    }
}

Proxy::~Proxy() = default;

bool Proxy::handle(http::Request& req, const http::Reply& reply,
                   std::shared_ptr<AccessRecord> note) {
    const RouteSpec* route = table_.match(req.header("Host").value_or(""), req.path);
    if (!route) return false;
    const auto index = static_cast<std::size_t>(route - table_.routes().data());
    if (note) note->route = route_label_[index];
    const RouteShape& shape = route_shape_[index];
    if (!requests_ && !shape.any()) {
        try {
            handle_route(req, reply, index, note);
        } catch (const http::Error& e) {
            reply(e.response());
        }
        return true;
    }
    // What shaping needs of the request, kept past it (the body and headers move upstream).
    struct Seen {
        std::optional<std::string> origin, accept_encoding;
        bool head = false, preflight = false;
    } seen;
    if (shape.cors) {
        if (auto o = req.header("Origin")) seen.origin = std::string(*o);
        seen.preflight = is_preflight(req);
    }
    if (shape.compress)
        if (auto ae = req.header("Accept-Encoding")) seen.accept_encoding = std::string(*ae);
    seen.head = req.method == "HEAD";
    // Every answer of the route is shaped and counted, the gateway's own refusals included.
    http::Reply shaped([this, reply, index, seen = std::move(seen)](http::Response r) {
        const RouteShape& shape = route_shape_[index];
        apply_header_rules(shape.rules, HeaderRule::Side::response, r.headers);
        if (shape.cors && !seen.preflight)
            shape.cors->decorate(r.headers, seen.origin.value_or(""));
        if (shape.compress) compress_response(r, seen.head ? "HEAD" : "GET", seen.accept_encoding);
        if (requests_) count_answer(index, r.status);
        reply(std::move(r));
    });
    try {
        handle_route(req, shaped, index, note);
    } catch (const http::Error& e) {
        shaped(e.response());
    }
    return true;
}

void Proxy::count_answer(std::size_t index, int status) {
    auto& codes = route_codes_[index];
    auto it = codes.find(status);
    if (it == codes.end()) {
        char code[8];
        auto [end, ec] = std::to_chars(code, code + sizeof code, status);
        metrics::Counter& c =
            requests_->with({route_label_[index], route_pool_[index]->name,
                             std::string_view(code, static_cast<std::size_t>(end - code))});
        it = codes.emplace(status, &c).first;
    }
    it->second->inc();
}

void Proxy::handle_route(http::Request& req, const http::Reply& reply, std::size_t index,
                         const std::shared_ptr<AccessRecord>& note) {
    const RouteSpec* route = &table_.routes()[index];
    const RouteShape& shape = route_shape_[index];
    if (!route->addresses.admits(req.remote_address))
        throw http::Error(403, "forbidden", "this route does not take requests from your address");
    if (shape.cors && is_preflight(req)) {
        reply(shape.cors->preflight(*req.header("Origin"),
                                    *req.header("Access-Control-Request-Method"),
                                    req.header("Access-Control-Request-Headers")));
        return;
    }
    if (!route->methods.empty() && std::find(route->methods.begin(), route->methods.end(),
                                             req.method) == route->methods.end()) {
        std::string allow;
        for (const auto& m : route->methods)
            allow += (allow.empty() ? "" : ", ") + m;
        auto r = http::Response::error(405, "method_not_allowed",
                                       req.method + " is not allowed on " + req.path);
        r.headers.emplace("Allow", allow);
        reply(std::move(r));
        return;
    }
    const bool websocket = is_websocket_upgrade(req);
    if (websocket && !route->websocket)
        throw http::Error(400, "websocket_not_allowed",
                          "this route does not take WebSocket connections");
    if (websocket) check_websocket_handshake(req);
    for (const auto& h : route->require_headers)
        if (!req.headers.count(h))
            throw http::Error(400, "missing_header", "this route needs the " + h + " header");
    for (const auto& h : route->forbid_headers)
        if (req.headers.count(h))
            throw http::Error(400, "forbidden_header", "this route refuses the " + h + " header");
    if (route->max_body && req.body.size() > *route->max_body)
        throw http::Error(413, "body_too_large",
                          "the request body is over this route's limit of " +
                              std::to_string(*route->max_body) + " bytes");

    auto x = std::make_shared<Exchange>(reply);
    x->retry = idempotent(req.method);
    x->pool = route_pool_[index];
    x->note = note;
    x->websocket = websocket;

    // Identity: whatever the client claims in X-Strata-Caller is dropped (not_forwarded).
    Caller c;
    auto authz = req.header("Authorization");
    std::optional<std::string_view> bearer;
    if (authz && authz->size() >= 7 && strncasecmp(authz->data(), "Bearer ", 7) == 0)
        bearer = authz->substr(7);
    if (route->auth != AuthMode::none && bearer) {
        if (bearer->starts_with("st1.")) {
            if (verifier_) {
                const CachedSession& s = verified_session(*bearer);
                c.header = s.caller;
                c.user = s.user;
                c.session = s.session;
                c.scopes = &s.scopes;
                c.verified = true;
                c.pass_authorization = false; // verified here: the upstream gets the identity
            } else {
                c.unverified = true; // no keys here: passed on for the upstream to verify
            }
        } else if (bearer->starts_with("sk_") && keys_) {
            // Noted as a key (its id, never the secret) before its verdict comes.
            if (note) note_caller(*note, bearer, false, true, std::nullopt, "");
            check_api_key(std::string(*bearer), req, index, std::move(x));
            return;
        } else if (bearer->starts_with("sk_")) {
            c.unverified = true; // api_key_verifier = "": metad checks keys (and their scopes)
        } else if (jwt_) {
            const CachedSession& s = verified_jwt(*bearer);
            c.header = s.caller;
            c.subject = s.subject;
            c.scopes = &s.scopes;
            c.verified = true;
            c.pass_authorization = false;
        } else {
            throw http::Error(401, "invalid_token",
                              "the bearer token is neither a session token nor an API key" +
                                  std::string(jwt_ ? " nor a JWT" : ""));
        }
    }
    if (note) note_caller(*note, bearer, c.verified, c.unverified, c.user, c.header);
    if (route->auth == AuthMode::required && !c.verified && !c.unverified)
        throw http::Error(401, "unauthenticated", "this route needs a session token or an API key");
    send_route(req, index, std::move(x), c);
}

// The API key's verdict comes later (from metad, or at once when remembered): the request
// moves into the callback, as the server's is valid only during handle().
void Proxy::check_api_key(std::string token, http::Request& req, std::size_t index,
                          std::shared_ptr<Exchange> x) {
    if (!auth::parse_api_key(token))
        throw http::Error(401, "invalid_token", "the API key is not valid");
    auto held = std::make_shared<http::Request>(std::move(req));
    keys_->check(token, [this, held, index, x = std::move(x)](const KeyVerdict& v) mutable {
        try {
            if (v.kind == KeyVerdict::Kind::invalid)
                throw http::Error(401, "invalid_token", v.message);
            if (v.kind == KeyVerdict::Kind::unavailable)
                throw http::Error(503, "auth_unavailable",
                                  "API keys cannot be checked now: " + v.message);
            Caller c;
            c.header = v.caller;
            c.user = v.user;
            c.key = v.key;
            c.scopes = &v.scopes;
            c.verified = true;
            c.pass_authorization = false;
            send_route(*held, index, x, c);
        } catch (const http::Error& e) {
            x->reply(e.response());
        }
    });
}

void Proxy::send_route(http::Request& req, std::size_t index, std::shared_ptr<Exchange> x,
                       const Caller& c) {
    const RouteSpec* route = &table_.routes()[index];
    const RouteShape& shape = route_shape_[index];
    const http::Reply& reply = x->reply;
    auto authz = req.header("Authorization");
    // Denied credentials: on every route, auth=none too (a leaked key is refused there by
    // its id or digest, the only facts known without identity).
    if (denied_) {
        CredentialFacts f{c.user, c.key, c.session, c.subject, std::nullopt};
        if (authz && authz->size() >= 7 && strncasecmp(authz->data(), "Bearer ", 7) == 0)
            f.bearer = authz->substr(7);
        if (denied_->match(f))
            throw http::Error(403, "credential_denied", "this credential is refused here");
    }
    if (!route->scopes.empty()) {
        if (c.unverified)
            throw http::Error(403, "insufficient_scope",
                              "this route checks scopes at the gateway: use a session token" +
                                  std::string(jwt_ ? " or a JWT" : "") +
                                  std::string(keys_ ? " or an API key" : ""));
        for (const auto& need : route->scopes)
            if (c.verified && (!c.scopes || std::find(c.scopes->begin(), c.scopes->end(), need) ==
                                                c.scopes->end()))
                throw http::Error(403, "insufficient_scope", "this route needs the scope " + need);
    }

    if (RateLimiter* limiter = route_limiter_[index].get()) {
        auto v = limiter->take(rate_key(route->rate->key, req, c.user, authz),
                               RateLimiter::Clock::now());
        if (!v.allowed) {
            auto r = http::Response::error(429, "rate_limited",
                                           "too many requests on this route: try again later");
            add_rate_headers(r.headers, v);
            auto wait = static_cast<std::uint64_t>(std::ceil(v.retry_after));
            r.headers.emplace("Retry-After", std::to_string(std::max<std::uint64_t>(1, wait)));
            reply(std::move(r));
            return;
        }
        x->limit = v;
    }

    apply_header_rules(shape.rules, HeaderRule::Side::request, req.headers);
    auto hop = connection_tokens(req.headers);
    http_client::Request& up = x->up;
    up.method = req.method;
    up.path = origin_form(rewrite_path(*route, req.path), req);
    up.timeout = std::chrono::milliseconds(route->timeout_ms);
    std::string forwarded_for;
    up.headers.reserve(req.headers.size() + 6);
    for (const auto& [k, v] : req.headers) {
        if (not_forwarded.contains(k) || hop.count(k)) continue;
        if (!c.pass_authorization && strcasecmp(k.c_str(), "authorization") == 0) continue;
        if (strcasecmp(k.c_str(), "x-forwarded-for") == 0) {
            forwarded_for += (forwarded_for.empty() ? "" : ", ") + v;
            continue;
        }
        if (replaced_upstream.contains(k)) continue;
        up.headers.add(k, v);
    }
    if (!req.remote_address.empty())
        forwarded_for += (forwarded_for.empty() ? "" : ", ") + req.remote_address;
    if (!forwarded_for.empty()) up.headers.add("X-Forwarded-For", forwarded_for);
    if (auto host = req.header("Host")) up.headers.add("X-Forwarded-Host", std::string(*host));
    up.headers.add("X-Forwarded-Proto", req.tls ? "https" : "http");
    auto rid = req.header("X-Request-Id");
    x->request_id = x->note                      ? x->note->request_id
                    : rid && request_id_ok(*rid) ? std::string(*rid)
                                                 : new_request_id();
    up.headers.add("X-Request-Id", x->request_id);
    up.headers.add("traceparent", next_traceparent(req.header("traceparent")));
    up.headers.add("X-Strata-Caller", c.header);
    up.body = std::move(req.body);
    x->key = balance_key(x->pool->spec(), req);
    if (x->websocket) return send_websocket(std::move(x));
    if (route->cache && cache_) {
        send_cached(req, index, std::move(x), c, authz.has_value());
        return;
    }
    send(std::move(x));
}

// The cache answers, or sends the request up (changed as it says) with its answer going
// through it.
void Proxy::send_cached(const http::Request& req, std::size_t index, std::shared_ptr<Exchange> x,
                        const Caller& c, bool authorization) {
    auto r = std::make_shared<CacheRequest>();
    r->method = req.method;
    r->key.host = text::lower(req.header("Host").value_or(""));
    std::string target = origin_form(req.path, req);
    auto mark = target.find('?');
    r->key.path = target.substr(0, mark);
    if (mark != std::string::npos) r->key.query = target.substr(mark + 1);
    r->headers = req.headers;
    r->caller = c.header;
    r->credentials = authorization || req.headers.count("Cookie") || c.header != "anonymous";
    r->route = route_label_[index];
    r->own.emplace("X-Request-Id", x->request_id);
    if (x->limit) add_rate_headers(r->own, *x->limit);
    http::Reply reply = x->reply;
    cache_->handle(std::move(r), std::move(reply),
                   [this, x = std::move(x)](const Conditional& cond, http::Reply answer) {
                       if (cond.strip || !cond.if_none_match.empty() ||
                           !cond.if_modified_since.empty()) {
                           http_client::Headers h;
                           for (const auto& [k, v] : x->up.headers)
                               if (!cond.strip || (strcasecmp(k.c_str(), "if-none-match") != 0 &&
                                                   strcasecmp(k.c_str(), "if-modified-since") != 0))
                                   h.add(k, v);
                           if (!cond.if_none_match.empty())
                               h.add("If-None-Match", cond.if_none_match);
                           if (!cond.if_modified_since.empty())
                               h.add("If-Modified-Since", cond.if_modified_since);
                           x->up.headers = std::move(h);
                       }
                       x->reply = std::move(answer);
                       send(x);
                   });
}

void Proxy::send(std::shared_ptr<Exchange> x) {
    auto member = x->pool->pick(x->key);
    if (!member) {
        auto r = http::Response::error(503, "no_healthy_upstream",
                                       "every member of the route's pool is down or ejected");
        r.headers.emplace("X-Request-Id", x->request_id);
        if (x->limit) add_rate_headers(r.headers, *x->limit);
        x->reply(std::move(r));
        return;
    }
    send_to(x, *member);
}

void Proxy::send_to(const std::shared_ptr<Exchange>& x, std::size_t member) {
    x->tried.push_back(member);
    x->pool->begin(member);
    auto started = std::chrono::steady_clock::now();
    try {
        start_exchange(x, member, started); // x->up stays: a retry sends it again
    } catch (const std::exception& e) {
        // Refused before anything was sent (a request the client library cannot express).
        x->pool->end(member, UpstreamPool::Outcome::neutral);
        auto r = http::Response::error(
            502, "bad_gateway", std::string("the request cannot be sent upstream: ") + e.what());
        r.headers.emplace("X-Request-Id", x->request_id);
        x->reply(std::move(r));
    }
}

void Proxy::start_exchange(const std::shared_ptr<Exchange>& x, std::size_t member,
                           std::chrono::steady_clock::time_point started) {
    Pool::Member* m = &x->pool->members[member];
    const http_client::Request& up = x->up;
    m->client->request(up, [this, x, m, member, started](http_client::Result r) {
        Pool& pool = *x->pool;
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (!pool.seconds.empty()) pool.seconds[member]->observe(seconds);
        if (x->note) note_upstream(*x->note, pool.name, m->target, seconds);
        if (r.error) {
            ErrorKind k = r.error->kind();
            if (upstream_errors_)
                upstream_errors_->with({pool.name, m->target, http_client::kind_name(k)}).inc();
            bool no_connection = k == ErrorKind::not_found || k == ErrorKind::refused ||
                                 k == ErrorKind::connect || k == ErrorKind::permission_denied ||
                                 k == ErrorKind::resolve;
            // Closed before any byte of an answer (the client library says which).
            bool reset = k == ErrorKind::transfer &&
                         std::string_view(r.error->what()).find("before the response was") ==
                             std::string_view::npos;
            pool.end(member, k == ErrorKind::cancelled ? UpstreamPool::Outcome::neutral
                                                       : UpstreamPool::Outcome::failed);
            if ((no_connection || reset) && x->retry)
                if (auto next = pool.retry(x->key, x->tried)) {
                    send_to(x, *next);
                    return;
                }
            http::Response e =
                k == ErrorKind::timeout
                    ? http::Response::error(504, "gateway_timeout",
                                            "the upstream did not answer in time")
                    : http::Response::error(502, "bad_gateway",
                                            std::string("the upstream failed: ") +
                                                std::string(http_client::kind_name(k)));
            e.headers.emplace("X-Request-Id", x->request_id);
            if (x->limit) add_rate_headers(e.headers, *x->limit);
            x->reply(std::move(e));
            return;
        }
        const int status = r.response.status;
        pool.end(member, status >= 500 ? UpstreamPool::Outcome::failed : UpstreamPool::Outcome::ok);
        if (x->retry && pool.spec().retry.on_5xx &&
            (status == 502 || status == 503 || status == 504))
            if (auto next = pool.retry(x->key, x->tried)) {
                send_to(x, *next);
                return;
            }
        http::Response out;
        out.status = status;
        auto hop = connection_tokens(r.response.headers);
        for (auto& [k, v] : r.response.headers) {
            if (not_forwarded.contains(k) || hop.count(k) || replaced_downstream.contains(k))
                continue;
            out.headers.emplace(std::move(k), std::move(v));
        }
        out.headers.emplace("X-Request-Id", x->request_id);
        if (x->limit) add_rate_headers(out.headers, *x->limit);
        out.body = std::move(r.response.body);
        x->reply(std::move(out));
    });
}

// WebSocket handshakes go to the hub, not the member's AsyncClient: the connection becomes
// a tunnel that outlives this Proxy (websocket_proxy.hh).
void Proxy::send_websocket(std::shared_ptr<Exchange> x) {
    auto refuse = [&](int status, std::string_view code, std::string_view message) {
        auto r = http::Response::error(status, code, message);
        r.headers.emplace("X-Request-Id", x->request_id);
        if (x->limit) add_rate_headers(r.headers, *x->limit);
        x->reply(std::move(r));
    };
    if (!websockets_) return refuse(503, "unavailable", "WebSocket proxying is not set up");
    auto member = x->pool->pick(x->key);
    if (!member)
        return refuse(503, "no_healthy_upstream",
                      "every member of the route's pool is down or ejected");
    open_websocket(x, *member);
}

void Proxy::open_websocket(const std::shared_ptr<Exchange>& x, std::size_t member) {
    auto refuse = [&](int status, std::string_view code, std::string_view message) {
        auto r = http::Response::error(status, code, message);
        r.headers.emplace("X-Request-Id", x->request_id);
        if (x->limit) add_rate_headers(r.headers, *x->limit);
        x->reply(std::move(r));
    };
    Pool::Member* m = &x->pool->members[member];
    x->tried.push_back(member);
    x->pool->begin(member);
    const auto started = std::chrono::steady_clock::now();
    std::weak_ptr<char> alive = alive_;
    bool opened = false;
    try {
        opened = websockets_->open(m->target, x->up.path, x->up.headers,
                                   x->up.timeout.value_or(std::chrono::milliseconds(30000)),
                                   [this, alive, x, member, started](WebSocketOutcome o) {
                                       if (alive.expired()) return; // this Proxy is gone
                                       websocket_answered(x, member, started, std::move(o));
                                   });
    } catch (const std::exception& e) {
        x->pool->end(member, UpstreamPool::Outcome::neutral);
        return refuse(502, "bad_gateway", std::string("cannot reach the upstream: ") + e.what());
    }
    if (!opened) {
        x->pool->end(member, UpstreamPool::Outcome::neutral);
        refuse(503, "websocket_limit", "too many WebSocket connections are open: try again later");
    }
}

void Proxy::websocket_answered(const std::shared_ptr<Exchange>& x, std::size_t member,
                               std::chrono::steady_clock::time_point started, WebSocketOutcome o) {
    Pool::Member* m = &x->pool->members[member];
    using Kind = WebSocketOutcome::Kind;
    const bool failed =
        o.kind == Kind::no_connection || o.kind == Kind::failed || o.kind == Kind::timeout;
    x->pool->end(member, failed ? UpstreamPool::Outcome::failed : UpstreamPool::Outcome::ok);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (upstream_seconds_) upstream_seconds_->with({x->pool->name, m->target}).observe(seconds);
    if (x->note) note_upstream(*x->note, x->pool->name, m->target, seconds);
    if (failed) {
        const char* kind = o.kind == Kind::no_connection ? "connect"
                           : o.kind == Kind::timeout     ? "timeout"
                                                         : "bad_response";
        if (upstream_errors_) upstream_errors_->with({x->pool->name, m->target, kind}).inc();
        // One other member, within the pool's retries= and budget (nothing was sent yet).
        if (o.kind == Kind::no_connection && x->tried.size() < 2)
            if (auto next = x->pool->retry(x->key, x->tried)) return open_websocket(x, *next);
        http::Response e =
            o.kind == Kind::timeout
                ? http::Response::error(504, "gateway_timeout",
                                        "the upstream did not answer in time")
                : http::Response::error(502, "bad_gateway", "the upstream failed: " + o.message);
        e.headers.emplace("X-Request-Id", x->request_id);
        if (x->limit) add_rate_headers(e.headers, *x->limit);
        x->reply(std::move(e));
        return;
    }
    http::Response out;
    out.status = o.status;
    auto hop = connection_tokens(o.headers);
    for (const auto& [k, v] : o.headers) {
        if (not_forwarded.contains(k) || hop.count(k) || replaced_downstream.contains(k)) continue;
        out.headers.emplace(k, v);
    }
    if (o.kind == Kind::upgraded) {
        out.headers.emplace("Upgrade", "websocket"); // MHD adds Connection: Upgrade
        out.upgrade = std::move(o.upgrade);
    } else {
        out.body = std::move(o.body);
    }
    out.headers.emplace("X-Request-Id", x->request_id);
    if (x->limit) add_rate_headers(out.headers, *x->limit);
    x->reply(std::move(out));
}

const Proxy::CachedSession& Proxy::verified_session(std::string_view token) {
    const std::int64_t now = std::time(nullptr);
    if (auto it = sessions_.find(token); it != sessions_.end()) {
        if (now < it->second.expires_at) return it->second;
        sessions_.erase(it); // verified again below: answered "expired"
    }
    auth::SessionClaims claims;
    auto verdict = verifier_->verify(token, now, &claims);
    if (verdict != auth::SessionVerifier::Verdict::ok)
        throw http::Error(401, "invalid_token",
                          verdict == auth::SessionVerifier::Verdict::expired
                              ? "the session token has expired"
                              : "the session token is not valid");
    // Bounded: past the limit the cache starts over (verifying is correct, only slower).
    if (sessions_.size() >= max_cached_sessions) sessions_.clear();
    CachedSession s;
    s.user = claims.user;
    s.session = claims.session;
    s.expires_at = claims.expires_at;
    s.caller = "user=" + std::to_string(claims.user) +
               "; session=" + std::to_string(claims.session) + "; scopes=";
    for (std::size_t i = 0; i < claims.scopes.size(); ++i)
        s.caller += (i ? "," : "") + claims.scopes[i];
    s.scopes = std::move(claims.scopes);
    return sessions_.emplace(std::string(token), std::move(s)).first->second;
}

// A JWT is remembered like a session token: an RS256 or ES256 check costs more than the
// rest of the request. Until exp + leeway (when verify would refuse it), at most an hour
// (tokens without exp, when the policy allows them).
const Proxy::CachedSession& Proxy::verified_jwt(std::string_view token) {
    const std::int64_t now = std::time(nullptr);
    if (auto it = jwts_.find(token); it != jwts_.end()) {
        if (now < it->second.expires_at) return it->second;
        jwts_.erase(it);
    }
    auto r = jwt_->verify(token, now);
    if (!r.ok())
        throw http::Error(401, "invalid_token",
                          std::string("the token is not valid (") + r.reason() + "): " + r.message);
    if (jwts_.size() >= max_cached_sessions) jwts_.clear();
    CachedSession s;
    const std::int64_t leeway = jwt_->policy().leeway.count();
    s.expires_at = now + 3600;
    if (r.claims.expires_at && *r.claims.expires_at < s.expires_at - leeway)
        s.expires_at = *r.claims.expires_at + leeway;
    s.caller = "jwt; sub=" + header_safe(r.claims.subject.value_or("")) +
               "; iss=" + header_safe(r.claims.issuer.value_or("")) + "; scopes=";
    for (std::size_t i = 0; i < r.claims.scopes.size(); ++i)
        s.caller += (i ? "," : "") + header_safe(r.claims.scopes[i]);
    s.subject = r.claims.subject.value_or("");
    s.scopes = std::move(r.claims.scopes);
    return jwts_.emplace(std::string(token), std::move(s)).first->second;
}

} // namespace strata::gatewayd

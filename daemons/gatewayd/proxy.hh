// The gateway's reverse proxy: a request matched by a route (proxy_config.hh) goes to one
// member of the route's pool over a kept-alive connection (lib/http_client's AsyncClient),
// and its answer comes back to the client. It runs on the daemon's loop: nothing blocks.
//
// On the way up:
// - hop-by-hop headers (Connection and what it names, Keep-Alive, TE, Trailer,
//   Transfer-Encoding, Upgrade, Proxy-*) and Host, Content-Length and Expect are not passed;
//   X-Forwarded-For gets the client's address appended, X-Forwarded-Host and
//   X-Forwarded-Proto ("https" on a TLS listener) are set;
// - X-Request-Id is kept when it is 1-128 of [A-Za-z0-9._:-], otherwise a new one is made;
//   the answer carries it too;
// - traceparent (W3C Trace Context) keeps the client's trace id and flags with a new parent
//   id, the gateway's hop; without a valid one a new trace starts (flags 00); tracestate
//   passes untouched;
// - the identity header X-Strata-Caller is always removed from what the client sent. A
//   session token (Authorization: Bearer st1...) that verifies (signature, expiry) becomes
//   "X-Strata-Caller: user=ID; session=SID; scopes=A,B"; one that does not is answered 401
//   here. An API key (Bearer sk_...) is checked with metad when [auth] api_key_verifier is
//   set (api_key_check.hh: remembered api_key_cache_seconds) and becomes
//   "X-Strata-Caller: user=ID; key=KID; scopes=A,B" (a bad one 401, metad unreachable 503
//   auth_unavailable); without a verifier it is passed on for the upstream to check. A JWT
//   becomes "jwt; sub=...; iss=...; scopes=..."; nobody verified, "anonymous". A verified
//   credential is not passed up (Authorization dropped). auth=required answers 401 without
//   credentials; auth=none passes Authorization on untouched and adds no identity.
// Errors, in the error shape: no route 404, method 405 (with Allow), body over the route's
// max_body 413, every member tried unreachable 502 (bad_gateway), every member down or
// ejected 503 (no_healthy_upstream), the route's timeout 504 (gateway_timeout), over the
// route's rate= 429 (rate_limited, with Retry-After; every answer of a limited route carries
// RateLimit-Limit, -Remaining and -Reset). An idempotent request (GET, HEAD, PUT, DELETE,
// OPTIONS) that could not connect, or whose connection closed before any byte of an answer
// (with retry_5xx=on: answered 502, 503 or 504), goes to another member, as the pool's
// retries= and retry budget allow (proxy_config.hh, upstream_pool.hh).
//
// A route's filters come first, in this order: its address lists (403 forbidden), a CORS
// preflight answered here (cors.hh), the method (405), required and forbidden headers (400
// missing_header, forbidden_header), the body limit, identity, the rate limit. Its request
// header rules then apply to what goes up; its response header rules, CORS headers and
// compression (compression.hh) to every answer.
#pragma once

#include "access_record.hh"
#include "api_key_check.hh"
#include "auth/jwt.hh"
#include "auth/session_token.hh"
#include "cache_layer.hh"
#include "denied_credentials.hh"
#include "http/router.hh"
#include "http_client/message.hh"
#include "metrics/metrics.hh"
#include "proxy_config.hh"
#include "rate_limit.hh"
#include "websocket_proxy.hh"

#include <chrono>
#include <memory>
#include <optional>
#include <unordered_map>
#include <uv.h>
#include <vector>

namespace strata::gatewayd {

// The proxy's metric families, registered once per registry: a reload builds a new Proxy
// that counts into the same families.
struct ProxyMetrics {
    explicit ProxyMetrics(metrics::Registry& registry);
    metrics::Family<metrics::Counter>* requests;
    metrics::Family<metrics::Histogram>* upstream_seconds;
    metrics::Family<metrics::Counter>* upstream_errors;
    CacheMetrics cache; // strata_gateway_cache_requests_total, strata_gateway_cache_bytes
    metrics::Family<metrics::Counter>* upstream_retries;
    metrics::Family<metrics::Gauge>* upstream_healthy;
    metrics::Family<metrics::Counter>* upstream_ejections;
};

struct ProxyOptions {
    std::size_t connections_per_member = 64; // kept-alive connections to each member
    // Where the proxy's metrics go (none when null):
    //   strata_gateway_requests_total{route,pool,code}   every answer of a route, the
    //     gateway's own (401, 405, 413, 429, 502, 504) included; route is [HOST]PREFIX
    //   strata_gateway_upstream_duration_seconds{pool,member}   each upstream exchange
    //   strata_gateway_upstream_errors_total{pool,member,kind}  exchanges that got no answer
    //   strata_gateway_cache_requests_total{route,result}   cached routes' GET and HEAD:
    //     hit, miss, stale, revalidated, bypass (cache_layer.hh)
    //   strata_gateway_cache_bytes   what the response caches hold
    //   strata_gateway_upstream_retries_total{pool}   requests sent again to another member
    //   strata_gateway_upstream_healthy{pool,member}  1 while a member takes requests (up by
    //     its health checks and not ejected), else 0
    //   strata_gateway_upstream_ejections_total{pool,member}   passive ejections
    const ProxyMetrics* metrics = nullptr;
    // Credentials refused whatever their validity ([auth] denied_credentials_file).
    std::shared_ptr<const DeniedCredentials> denied;
    // JWTs accepted besides session tokens ([auth] jwks_file); none when empty.
    std::optional<auth::JwtVerifier> jwt;
    // metad's socket, where API keys are checked ([auth] api_key_verifier); "" passes keys
    // on unverified. Answers are remembered api_key_cache (api_key_check.hh).
    std::string api_key_verifier;
    std::chrono::seconds api_key_cache{30};
    // Where routes with websocket=on take their upgrades (websocket_proxy.hh); it outlives
    // every Proxy. Null: such routes answer 503.
    WebSocketHub* websockets = nullptr;
    // The response cache of the routes with cache=on ([cache] max_bytes, max_object_bytes).
    // Each Proxy has its own: a reload starts empty (routes and pools may have changed what
    // a key means); the bytes gauge adds up the caches still alive.
    std::size_t cache_max_bytes = std::size_t{64} << 20;
    std::size_t cache_max_object_bytes = std::size_t{1} << 20;
};

class Proxy {
public:
    Proxy(uv_loop_t* loop, ProxySpec spec, std::optional<auth::SessionVerifier> verifier,
          ProxyOptions options = {});
    ~Proxy();
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    // Proxies the request when a route takes it: the answer arrives through reply (the
    // gateway's own refusals, 401, 405, 413, 429, too). False when no route takes it, so the
    // gateway serves its own pages; the request is then untouched.
    // note, when given, gets the route, the caller and the upstream (the access log), and
    // its request_id is the one used.
    bool handle(http::Request& request, const http::Reply& reply,
                std::shared_ptr<AccessRecord> note = nullptr);

    struct Pool; // an UpstreamPool (upstream_pool.hh)

private:
    void send(std::shared_ptr<struct Exchange> x);
    // A WebSocket handshake of a websocket=on route, once the route let it through.
    void send_websocket(std::shared_ptr<struct Exchange> x);
    void open_websocket(const std::shared_ptr<struct Exchange>& x, std::size_t member);
    void websocket_answered(const std::shared_ptr<struct Exchange>& x, std::size_t member,
                            std::chrono::steady_clock::time_point started,
                            WebSocketOutcome outcome);
    void send_to(const std::shared_ptr<struct Exchange>& x, std::size_t member);
    void count_answer(std::size_t route, int status); // strata_gateway_requests_total
    void start_exchange(const std::shared_ptr<struct Exchange>& x, std::size_t member,
                        std::chrono::steady_clock::time_point started);

    // Session tokens already verified, until they expire: an Ed25519 check costs more than
    // the rest of a proxied request. The value is what goes upstream in X-Strata-Caller.
    struct CachedSession {
        std::uint64_t user = 0;
        std::uint64_t session = 0; // session tokens
        std::string subject;       // JWTs: their sub
        std::int64_t expires_at = 0;
        std::string caller;
        std::vector<std::string> scopes;
    };
    static constexpr std::size_t max_cached_sessions = 65536;
    // The claims of a valid token, or throws http::Error 401.
    const CachedSession& verified_session(std::string_view token);
    struct TokenHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, CachedSession, TokenHash, std::equal_to<>> sessions_;
    // The same for JWTs (user unused): the claims of a valid one, or throws http::Error 401.
    const CachedSession& verified_jwt(std::string_view token);
    std::unordered_map<std::string, CachedSession, TokenHash, std::equal_to<>> jwts_;
    void handle_route(http::Request& request, const http::Reply& reply, std::size_t index,
                      const std::shared_ptr<AccessRecord>& note);
    // Who the request is from, as identity found it.
    struct Caller {
        std::string header = "anonymous"; // X-Strata-Caller upstream
        std::optional<std::uint64_t> user;
        bool verified = false;   // here: the route's scopes= are checked against `scopes`
        bool unverified = false; // credentials passed on for the upstream to check
        bool pass_authorization = true;
        const std::vector<std::string>* scopes = nullptr;
        std::optional<std::uint64_t> key, session; // verified API key, session token
        std::optional<std::string_view> subject;   // verified JWT
    };
    // handle_route's rest once the caller is known: scopes, rate limit, the upstream request.
    void send_route(http::Request& request, std::size_t index, std::shared_ptr<struct Exchange> x,
                    const Caller& caller);
    void send_cached(const http::Request& request, std::size_t index,
                     std::shared_ptr<struct Exchange> x, const Caller& caller, bool authorization);
    void check_api_key(std::string token, http::Request& request, std::size_t index,
                       std::shared_ptr<struct Exchange> x);

    // What the route does to every answer: header rules, CORS, compression.
    struct RouteShape {
        std::vector<HeaderRule> rules; // its header sets, in order
        const CorsPolicy* cors = nullptr;
        bool compress = false;
        bool any() const { return !rules.empty() || cors || compress; }
    };

    uv_loop_t* loop_;
    RouteTable table_;
    std::vector<std::unique_ptr<Pool>> pools_; // in table_'s route order: route_pool_[i]
    std::vector<Pool*> route_pool_;
    std::vector<std::unique_ptr<RateLimiter>> route_limiter_; // null: no rate= on the route
    std::vector<std::string> route_label_;                    // [HOST]PREFIX
    std::vector<RouteShape> route_shape_;
    CorsPolicies cors_;
    metrics::Family<metrics::Counter>* requests_ = nullptr;
    // requests_'s child of each route and status met so far (no label lookup per answer).
    std::vector<std::unordered_map<int, metrics::Counter*>> route_codes_;
    metrics::Family<metrics::Histogram>* upstream_seconds_ = nullptr;
    metrics::Family<metrics::Counter>* upstream_errors_ = nullptr;
    std::optional<auth::SessionVerifier> verifier_;
    std::optional<auth::JwtVerifier> jwt_;
    std::shared_ptr<const DeniedCredentials> denied_; // null: none
    WebSocketHub* websockets_ = nullptr;
    // Handshakes outlive a Proxy (daemon stop): their answers check this first.
    std::shared_ptr<char> alive_ = std::make_shared<char>();
    // Destroyed before the pools: its waiting requests answered while the rest still stands.
    std::unique_ptr<CacheLayer> cache_; // null: no route has cache=on
    // Last: destroyed first, its lookups in flight answered 503 while the rest still stands.
    std::unique_ptr<ApiKeyChecker> keys_;
};

} // namespace strata::gatewayd

// The gateway's upstream pools and routes, as written in gatewayd.conf (strata-gatewayd.conf(5)):
//
//   [proxy]
//   pools  = ["metad unix:/run/strata/metad.sock",
//             "app balance=least_conn http://127.0.0.1:8081 weight=3 http://127.0.0.1:8082"]
//   routes = ["/v1/ pool=metad auth=required",
//             "/app/ pool=app host=app.example.com methods=GET,HEAD rewrite=/ timeout_ms=5000"]
//
// A pool: its name, then its members (unix:/PATH or http://HOST:PORT), each optionally followed
// by weight=N (1..100, default 1), and pool options anywhere after the name (balancer.hh,
// health_check.hh, outlier.hh, retry_budget.hh say more):
//   balance=round_robin (smooth weighted, the default), least_conn (fewest in flight per unit
//     of weight), ip_hash (the client's whole address on a consistent-hash ring; unix-socket
//     clients go round robin) or hash (needs hash=);
//   hash=uri|header:NAME|cookie:NAME  balance=hash on the request-target as sent (path and
//     query), a header's value or a cookie's; a request without it goes round robin. The ring
//     holds 100 points per unit of weight (Ketama-style), so adding or removing a member moves
//     about 1/N of the keys; a key whose member is down or ejected goes to the next on the ring;
//   health=/PATH health_interval_ms=5000 health_timeout_ms=2000 rise=2 fall=3  active checks:
//     GET PATH on each member's own transport, 2xx/3xx healthy; down after `fall` failures in a
//     row, up after `rise` successes; members start up;
//   eject_after=5 eject_ms=10000 eject_max_ms=300000 eject_max_percent=50  passive ejection
//     after that many failures in a row (0: never), for eject_ms doubling on each further
//     ejection up to eject_max_ms, never more than that share of the members at once;
//   retries=1 retry_5xx=off retry_budget=20 retry_min_per_s=3  idempotent requests (GET, HEAD,
//     PUT, DELETE, OPTIONS) that got no connection or a connection closed without an answer
//     (and with retry_5xx=on a 502, 503 or 504) go to up to `retries` other members, while the
//     pool's retries stay under retry_budget percent of its requests of the last 10 s or
//     retry_min_per_s in the current second.
// Every member down or ejected: 503 no_healthy_upstream.
// A route: a path prefix ("/" or "/a/b/": whole segments; "/v1" also matches "/v1/x" but not
// "/v1x"), then options: pool=NAME (required), host=NAME (the Host header, port ignored, case
// ignored; default any), methods=A,B (default any), rewrite=PREFIX (replaces the matched
// prefix), timeout_ms=N (whole upstream exchange, default 30000), max_body=BYTES (default
// the server's http.max_body_bytes), auth=none|optional|required (default optional),
// rate=N/s|N/m|N/h (N 1..1000000: a token bucket per rate_key, refusing with 429), burst=N
// (the bucket's size, default N) and rate_key=ip|user|api_key|route (default ip),
// allow=CIDR,... and deny=CIDR,... (address_list.hh: 403 forbidden for other clients),
// require_headers=A,B and forbid_headers=A,B (400 when one is missing or present),
// headers=SET,... (header_rules.hh), cors=NAME (cors.hh), compress=on|off (compression.hh;
// default proxy.compress), scopes=A,B (the session token, JWT or API key must carry each:
// 403 insufficient_scope; with [auth] api_key_verifier = "" API keys are refused there,
// metad alone knowing their scopes), websocket=on|off (default off: on lets WebSocket
// handshakes, GET with Connection: Upgrade and Upgrade: websocket, through to the member
// after every filter above; upgrades to other routes are answered 400
// websocket_not_allowed; websocket_proxy.hh), cache=on|off (GET answers cached by RFC 9111's rules,
// cache_layer.hh; default off).
// The request goes to the route with the longest matching prefix among those whose host
// matches, a route with a host beating one without at the same length.
#pragma once

#include "address_list.hh"
#include "cors.hh"
#include "header_rules.hh"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gatewayd {

enum class Balance { round_robin, least_conn, ip_hash, hash };

struct MemberSpec {
    std::string target; // "unix:/run/strata/metad.sock" or "http://127.0.0.1:8081"
    int weight = 1;
};

// What balance=hash hashes (hash=uri, hash=header:NAME, hash=cookie:NAME).
struct HashKey {
    enum class Kind { uri, header, cookie } kind = Kind::uri;
    std::string name; // the header's or cookie's name
};

// Active health checks (health=/PATH ...); none when path is empty.
struct HealthSpec {
    std::string path;
    std::uint32_t interval_ms = 5000;
    std::uint32_t timeout_ms = 2000;
    int rise = 2; // consecutive successes that bring a down member up
    int fall = 3; // consecutive failures that take it down
};

// Passive outlier ejection; off with eject_after = 0.
struct OutlierSpec {
    int eject_after = 5; // consecutive failures (no connection, reset, timeout, 5xx)
    std::uint32_t eject_ms = 10000;
    std::uint32_t eject_max_ms = 300000;
    int max_percent = 50; // of the pool's members ejected at once
};

// Retries of idempotent requests.
struct RetrySpec {
    int retries = 1;         // further members tried after the first
    bool on_5xx = false;     // also after a 502, 503 or 504 answer
    int budget_percent = 20; // retries at most this share of the pool's requests...
    int min_per_second = 3;  // ...or this many in any second
};

struct PoolSpec {
    std::string name;
    Balance balance = Balance::round_robin;
    HashKey hash; // balance=hash
    std::vector<MemberSpec> members;
    HealthSpec health;
    OutlierSpec outlier;
    RetrySpec retry;
};

enum class AuthMode { none, optional, required };

// Whose requests share a rate-limit bucket: the client's address, the verified user (the
// address for anonymous callers), the API key's id (else as user), or the whole route.
enum class RateKey { ip, user, api_key, route };

struct RateSpec {
    double per_second = 0;
    std::uint64_t burst = 0;
    RateKey key = RateKey::ip;
};

struct RouteSpec {
    std::string prefix; // "/v1" or "/" (no trailing slash except for "/")
    std::string pool;
    std::string host;                 // lower case, no port; empty: any
    std::vector<std::string> methods; // empty: any
    std::optional<std::string> rewrite;
    std::uint32_t timeout_ms = 30000;
    std::optional<std::uint64_t> max_body;
    AuthMode auth = AuthMode::optional;
    std::optional<RateSpec> rate; // rate=N/s|m|h [burst=N] [rate_key=...]
    AddressFilter addresses;      // allow= deny=
    std::vector<std::string> require_headers, forbid_headers;
    std::vector<std::string> header_sets; // headers=: names in [proxy] header_rules
    std::string cors;                     // cors=: a name in [proxy] cors; empty: none
    std::optional<bool> compress;         // compress=on|off; default: ProxySpec::compress
    std::vector<std::string> scopes;      // scopes=A,B: a verified identity must hold each
    bool websocket = false;               // websocket=on: WebSocket upgrades pass
    bool cache = false;                   // cache=on|off: answers cached (cache_layer.hh)
};

// Throws std::invalid_argument with a message naming the offending word.
PoolSpec parse_pool(std::string_view text);
RouteSpec parse_route(std::string_view text);

// The whole [proxy] section, parsed.
struct ProxySpec {
    std::vector<PoolSpec> pools;
    std::vector<RouteSpec> routes;
    HeaderRuleSets header_rules;
    CorsPolicies cors;
    bool compress = true;
};

// Checks a whole configuration: unique pool names, every route's pool, header rule sets and
// CORS policy defined, no two routes with the same host and prefix. Throws
// std::invalid_argument.
void check_proxy_config(const ProxySpec& spec);

// Route matching (see above).
class RouteTable {
public:
    explicit RouteTable(std::vector<RouteSpec> routes);
    // The route for this Host header value and decoded path, or nullptr. Methods are checked
    // by the caller (a route that matches but refuses the method answers 405).
    const RouteSpec* match(std::string_view host_header, std::string_view path) const;
    const std::vector<RouteSpec>& routes() const { return routes_; }

private:
    std::vector<RouteSpec> routes_; // longest prefix first, hosted before hostless
};

// The upstream path for a matched route: the prefix replaced by the rewrite, if any.
std::string rewrite_path(const RouteSpec& route, std::string_view path);

} // namespace strata::gatewayd

// The gateway's upstream pools and routes, as written in gatewayd.conf (strata-gatewayd.conf(5)):
//
//   [proxy]
//   pools  = ["metad unix:/run/strata/metad.sock",
//             "app balance=least_conn http://127.0.0.1:8081 weight=3 http://127.0.0.1:8082"]
//   routes = ["/v1/ pool=metad auth=required",
//             "/app/ pool=app host=app.example.com methods=GET,HEAD rewrite=/ timeout_ms=5000"]
//
// A pool: its name, then its members (unix:/PATH or http://HOST:PORT), each optionally followed
// by weight=N (1..100, default 1), and balance=round_robin (smooth weighted) or least_conn
// anywhere after the name.
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

enum class Balance { round_robin, least_conn };

struct MemberSpec {
    std::string target; // "unix:/run/strata/metad.sock" or "http://127.0.0.1:8081"
    int weight = 1;
};

struct PoolSpec {
    std::string name;
    Balance balance = Balance::round_robin;
    std::vector<MemberSpec> members;
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

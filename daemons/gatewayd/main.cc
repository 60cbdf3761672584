// strata-gatewayd: the public HTTP entry of Strata.
// This release has the common daemon runtime and a public listener that proxies the routes
// of [proxy] to their upstream pools (proxy.hh: balancing, kept-alive connections, the
// verified identity passed upstream, request ids, per-route rate limits, 502/504 in the error
// shape, address filters, header rules, CORS, compression), and serves the web client's
// static files and /healthz for everything no route takes; session tokens and JWTs are
// verified here. Every answer carries X-Request-Id and goes to the access log (front.hh);
// SIGHUP swaps in new routes, pools, filters and keys without dropping requests in flight.
// [tls] listen serves the same routes over HTTPS (tls_config.hh); SIGHUP re-reads the
// certificate and key, and new handshakes present the renewed certificate. WebSocket
// upgrades of websocket=on routes are spliced to their member (websocket_proxy.hh) and
// outlive reloads.
// Routes with cache=on keep GET answers by HTTP's caching rules (cache_layer.hh).
#include "daemon/runtime.hh"
#include "front.hh"
#include "http_client/error.hh"
#include "http_client/target.hh"
#include "proxy.hh"
#include "tls_config.hh"

#include <memory>

namespace {

using namespace strata;

http::Router g_public;
std::unique_ptr<gatewayd::Front> g_front;
std::unique_ptr<gatewayd::ProxyMetrics> g_proxy_metrics;
std::unique_ptr<gatewayd::WebSocketMetrics> g_websocket_metrics;
// Upgraded connections live here, not in a generation: a reload keeps them open.
std::unique_ptr<gatewayd::WebSocketHub> g_websockets;
metrics::Counter* g_log_dropped = nullptr;
std::size_t g_connections_per_member = 64; // restart-only: the value the daemon started with

// Each list item must parse: --check-config and a reload refuse what start would refuse.
template <class Parse>
std::function<std::string(const config::Value&)> each_item(Parse parse) {
    return [parse](const config::Value& v) -> std::string {
        for (const auto& item : std::get<std::vector<std::string>>(v)) {
            try {
                parse(item);
            } catch (const std::exception& e) {
                return "\"" + item + "\": " + e.what();
            }
        }
        return "";
    };
}

void extend_schema(config::Schema& s) {
    s.string("log.access", "journal", true,
             "access log: \"journal\" (the daemon's log), an absolute file path, or \"\" (none)",
             {}, [](const config::Value& v) -> std::string {
                 const auto& t = std::get<std::string>(v);
                 return t.empty() || t == "journal" || t[0] == '/'
                            ? ""
                            : "\"journal\", an absolute path or \"\"";
             });
    s.integer("log.access_buffer_bytes", 1048576, 4096, 268435456, true,
              "access log lines waiting for a slow disk at most; beyond, lines are dropped");
    s.string_list("public.listen", {"[::]:80"}, false,
                  "TCP listeners (host:port) when systemd passes no 'public' socket");
    gatewayd::tls_schema(s);
    s.string("public.web_root", "/usr/share/strata/web", true,
             "directory of the web client served at / (what no route takes)");
    s.string_list("proxy.pools", {}, true,
                  "upstream pools: \"NAME [balance=round_robin|least_conn] TARGET [weight=N] "
                  "...\", TARGET unix:/PATH or http://HOST:PORT",
                  each_item(gatewayd::parse_pool));
    s.string_list("proxy.routes", {}, true,
                  "routes: \"PREFIX pool=NAME [host=H] [methods=A,B] [rewrite=P] "
                  "[timeout_ms=N] [max_body=N] [auth=none|optional|required] [rate=N/s|m|h "
                  "[burst=N] [rate_key=ip|user|api_key|route]] [allow=CIDR,..] [deny=CIDR,..] "
                  "[require_headers=A,..] [forbid_headers=A,..] [headers=SET,..] [cors=NAME] "
                  "[compress=on|off] [scopes=A,..] [websocket=on|off] [cache=on|off]\"",
                  each_item(gatewayd::parse_route));
    s.string_list("proxy.header_rules", {}, true,
                  "header transforms: \"SET request|response add|set|remove|rename HEADER "
                  "[VALUE|NEW-NAME]\"",
                  each_item(gatewayd::parse_header_rule));
    s.string_list("proxy.cors", {}, true,
                  "CORS policies: \"NAME origins=O,.. [methods=M,..] [headers=H,..] "
                  "[expose=H,..] [credentials=true|false] [max_age=S]\"",
                  each_item(gatewayd::parse_cors_policy));
    s.boolean("proxy.compress", true, true,
              "compress answers of routes (gzip or brotli) unless a route says compress=off");
    s.string_list("public.allow", {}, true,
                  "CIDR blocks whose clients are served (empty: all); /healthz is exempt",
                  each_item(gatewayd::parse_cidr));
    s.string_list("public.deny", {}, true, "CIDR blocks whose clients are refused (403)",
                  each_item(gatewayd::parse_cidr));
    s.integer("proxy.websocket_max_connections", 1024, 1, 1000000, true,
              "WebSocket connections (handshakes included) open through the gateway at most; "
              "past it upgrades are answered 503");
    s.integer("proxy.websocket_idle_timeout_seconds", 300, 1, 86400, true,
              "an upgraded connection without a byte either way this long is closed");
    s.integer("cache.max_bytes", 67108864, 0, std::int64_t{1} << 40, true,
              "bytes the response cache of routes with cache=on holds at most (answers, "
              "headers, keys); a reload starts it empty");
    s.integer("cache.max_object_bytes", 1048576, 0, std::int64_t{1} << 36, true,
              "answers with a larger body are passed through, not stored");
    s.integer("proxy.connections_per_member", 64, 1, 4096, false,
              "kept-alive connections the gateway opens to each upstream member at most");
    s.string("auth.jwks_file", "", true,
             "JWK Set of the keys that verify JWTs (HS256, RS256, ES256) accepted besides "
             "session tokens (\"\": no JWTs)");
    s.string_list("auth.jwt_issuers", {}, true, "accepted iss values (empty: any)");
    s.string_list("auth.jwt_audiences", {}, true,
                  "aud must hold one of these (empty: not checked)");
    s.string_list("auth.jwt_algorithms", {"HS256", "RS256", "ES256"}, true,
                  "JWT algorithms accepted");
    s.integer("auth.jwt_leeway_seconds", 60, 0, 3600, true,
              "clock skew allowed on exp, nbf and iat");
    s.string("auth.api_key_verifier", "unix:/run/strata/metad.sock", true,
             "metad's socket, where API keys are checked before their identity goes upstream "
             "(\"\": keys are passed on for the upstream to check)",
             {}, [](const config::Value& v) -> std::string {
                 const auto& t = std::get<std::string>(v);
                 if (t.empty()) return "";
                 try {
                     http_client::Target::parse(t);
                     return "";
                 } catch (const http_client::Error& e) {
                     return e.what();
                 }
             });
    s.integer("auth.api_key_cache_seconds", 30, 1, 3600, true,
              "how long an API key's check is remembered (a revoked key passes that long)");
    s.string("auth.denied_credentials_file", "", true,
             "credentials refused whatever their validity, one user:ID, key:ID, session:ID, "
             "sub:SUBJECT or sha256:HEX per line (\"\": none)");
    s.string("auth.session_public_keys_file", "", true,
             "session token public keys, one hex key per line (\"\": tokens are passed on "
             "for the upstream to verify)");
}

// Each item was checked by its key; this checks them together (routes name defined pools,
// header rule sets and CORS policies).
gatewayd::ProxySpec proxy_config(const config::Config& cfg) {
    gatewayd::ProxySpec pc;
    for (const auto& p : cfg.string_list("proxy.pools"))
        pc.pools.push_back(gatewayd::parse_pool(p));
    for (const auto& r : cfg.string_list("proxy.routes"))
        pc.routes.push_back(gatewayd::parse_route(r));
    pc.header_rules = gatewayd::parse_header_rules(cfg.string_list("proxy.header_rules"));
    pc.cors = gatewayd::parse_cors_policies(cfg.string_list("proxy.cors"));
    pc.compress = cfg.boolean("proxy.compress");
    gatewayd::check_proxy_config(pc);
    return pc;
}

std::shared_ptr<const gatewayd::DeniedCredentials> denied_credentials(const config::Config& cfg) {
    const auto& file = cfg.string("auth.denied_credentials_file");
    if (file.empty()) return nullptr;
    return std::make_shared<const gatewayd::DeniedCredentials>(
        gatewayd::DeniedCredentials::from_file(file));
}

std::optional<auth::JwtVerifier> jwt_verifier(const config::Config& cfg) {
    const auto& file = cfg.string("auth.jwks_file");
    if (file.empty()) return std::nullopt;
    auth::JwtPolicy policy;
    policy.algorithms = cfg.string_list("auth.jwt_algorithms");
    policy.issuers = cfg.string_list("auth.jwt_issuers");
    policy.audiences = cfg.string_list("auth.jwt_audiences");
    policy.leeway = std::chrono::seconds(cfg.integer("auth.jwt_leeway_seconds"));
    return auth::JwtVerifier(auth::Jwks::from_file(file), std::move(policy));
}

gatewayd::AddressFilter public_filter(const config::Config& cfg) {
    gatewayd::AddressFilter f;
    for (const auto& c : cfg.string_list("public.allow"))
        f.allow.add(gatewayd::parse_cidr(c));
    for (const auto& c : cfg.string_list("public.deny"))
        f.deny.add(gatewayd::parse_cidr(c));
    return f;
}

// What the config defines for requests: a proxy, the address filter, the web root.
std::unique_ptr<gatewayd::Front::Generation> generation(daemon::Runtime& rt,
                                                        const config::Config& cfg) {
    std::optional<auth::SessionVerifier> verifier;
    if (const auto& keys = cfg.string("auth.session_public_keys_file"); !keys.empty())
        verifier = auth::SessionVerifier::from_file(keys);
    auto g = std::make_unique<gatewayd::Front::Generation>();
    g->proxy = std::make_unique<gatewayd::Proxy>(
        rt.loop(), proxy_config(cfg), std::move(verifier),
        gatewayd::ProxyOptions{
            .connections_per_member = g_connections_per_member,
            .metrics = g_proxy_metrics.get(),
            .denied = denied_credentials(cfg),
            .jwt = jwt_verifier(cfg),
            .api_key_verifier = cfg.string("auth.api_key_verifier"),
            .api_key_cache = std::chrono::seconds(cfg.integer("auth.api_key_cache_seconds")),
            .websockets = g_websockets.get(),
            .cache_max_bytes = static_cast<std::size_t>(cfg.integer("cache.max_bytes")),
            .cache_max_object_bytes =
                static_cast<std::size_t>(cfg.integer("cache.max_object_bytes"))});
    g->filter = public_filter(cfg);
    g->web_root = cfg.string("public.web_root");
    return g;
}

gatewayd::WebSocketLimits websocket_limits(const config::Config& cfg) {
    return {static_cast<std::size_t>(cfg.integer("proxy.websocket_max_connections")),
            std::chrono::seconds(cfg.integer("proxy.websocket_idle_timeout_seconds"))};
}

// The same target is reopened (logrotate); another one replaces it.
void apply_access_log(const config::Config& cfg) {
    const auto& target = cfg.string("log.access");
    auto* current = g_front->access_log();
    if (current && current->target() == target) {
        current->reopen();
        return;
    }
    g_front->set_access_log(gatewayd::AccessLog::open(
        target, static_cast<std::size_t>(cfg.integer("log.access_buffer_bytes")), g_log_dropped));
}

void start(daemon::Runtime& rt) {
    const auto& cfg = rt.config();
    g_connections_per_member =
        static_cast<std::size_t>(cfg.integer("proxy.connections_per_member"));
    g_proxy_metrics = std::make_unique<gatewayd::ProxyMetrics>(rt.metrics());
    g_log_dropped = &rt.metrics().counter(
        "strata_gateway_access_log_dropped_total",
        "Access log lines lost: the file's buffer was full or a write failed");
    g_websocket_metrics = std::make_unique<gatewayd::WebSocketMetrics>(rt.metrics());
    g_websockets = std::make_unique<gatewayd::WebSocketHub>(rt.loop(), g_websocket_metrics.get(),
                                                            websocket_limits(cfg));
    g_front = std::make_unique<gatewayd::Front>(rt.loop());
    g_front->serve(generation(rt, cfg));
    apply_access_log(cfg);
    g_front->install(g_public);
    rt.observe_listeners([](const http::Exchange& x) { g_front->log_unrouted(x); });
    rt.add_listener("public", cfg.string_list("public.listen"), g_public,
                    daemon::Runtime::Engine::content);
    if (auto cert = gatewayd::tls_certificate(cfg)) {
        gatewayd::use_tls_certificate(std::move(cert));
        gatewayd::install_tls_metrics(rt.metrics());
        rt.add_listener("public-tls", cfg.string_list("tls.listen"), g_public,
                        daemon::Runtime::Engine::general, gatewayd::tls_priorities(cfg));
    }
}

// Everything is built before anything is swapped: a reload that throws changes nothing.
void reload(daemon::Runtime& rt, const config::Config& next) {
    auto cert = gatewayd::tls_certificate(next); // unreadable or mismatched: rejected here
    auto g = generation(rt, next);
    g_websockets->set_limits(websocket_limits(next));
    apply_access_log(next);
    g_front->serve(std::move(g));
    if (cert) gatewayd::use_tls_certificate(std::move(cert));
}

void stop(daemon::Runtime&) {
    g_front.reset();      // its proxies' clients live on the loop
    g_websockets.reset(); // closes upgraded connections and handshakes
}

} // namespace

int main(int argc, char** argv) {
    static const daemon::Spec spec{
        .name = "gatewayd",
        .summary = "Strata HTTP API gateway.",
        .extend_schema = extend_schema,
        .check =
            [](const config::Config& c) {
                proxy_config(c);
                jwt_verifier(c);
                denied_credentials(c);
                gatewayd::tls_certificate(c); // --check-config: the files load and match
            },
        .start = start,
        .reload = reload,
        .stop = stop,
        // Bodies are read into memory in pieces of this size; libmicrohttpd zeroes a
        // connection's pool (headers + this) before every request, so it stays small.
        .http_body_buffer_bytes = 32 * 1024,
    };
    return daemon::main(argc, argv, spec);
}

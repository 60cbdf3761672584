// strata-gatewayd: the public HTTP entry of Strata.
// This release has the common daemon runtime and a public listener that proxies the routes
// of [proxy] to their upstream pools (proxy.hh: balancing, kept-alive connections, the
// verified identity passed upstream, request ids, per-route rate limits, 502/504 in the error
// shape, address filters, header rules, CORS, compression), and serves the web client's
// static files and /healthz for everything no route takes; session tokens and JWTs are
// verified here. TLS, caching, health checks, WebSocket and hot reload of routes come with
// the rest of the gateway's issue.
#include "daemon/runtime.hh"
#include "proxy.hh"
#include "static_files.hh"

#include <memory>

namespace {

using namespace strata;

http::Router g_public;
std::unique_ptr<gatewayd::Proxy> g_proxy;

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
    s.string_list("public.listen", {"[::]:80"}, false,
                  "TCP listeners (host:port) when systemd passes no 'public' socket");
    s.string("public.web_root", "/usr/share/strata/web", true,
             "directory of the web client served at / (what no route takes)");
    s.string_list("proxy.pools", {}, false,
                  "upstream pools: \"NAME [balance=round_robin|least_conn] TARGET [weight=N] "
                  "...\", TARGET unix:/PATH or http://HOST:PORT",
                  each_item(gatewayd::parse_pool));
    s.string_list("proxy.routes", {}, false,
                  "routes: \"PREFIX pool=NAME [host=H] [methods=A,B] [rewrite=P] "
                  "[timeout_ms=N] [max_body=N] [auth=none|optional|required] [rate=N/s|m|h "
                  "[burst=N] [rate_key=ip|user|api_key|route]] [allow=CIDR,..] [deny=CIDR,..] "
                  "[require_headers=A,..] [forbid_headers=A,..] [headers=SET,..] [cors=NAME] "
                  "[compress=on|off] [scopes=A,..]\"",
                  each_item(gatewayd::parse_route));
    s.string_list("proxy.header_rules", {}, false,
                  "header transforms: \"SET request|response add|set|remove|rename HEADER "
                  "[VALUE|NEW-NAME]\"",
                  each_item(gatewayd::parse_header_rule));
    s.string_list("proxy.cors", {}, false,
                  "CORS policies: \"NAME origins=O,.. [methods=M,..] [headers=H,..] "
                  "[expose=H,..] [credentials=true|false] [max_age=S]\"",
                  each_item(gatewayd::parse_cors_policy));
    s.boolean("proxy.compress", true, false,
              "compress answers of routes (gzip or brotli) unless a route says compress=off");
    s.string_list("public.allow", {}, false,
                  "CIDR blocks whose clients are served (empty: all); /healthz is exempt",
                  each_item(gatewayd::parse_cidr));
    s.string_list("public.deny", {}, false, "CIDR blocks whose clients are refused (403)",
                  each_item(gatewayd::parse_cidr));
    s.integer("proxy.connections_per_member", 64, 1, 4096, false,
              "kept-alive connections the gateway opens to each upstream member at most");
    s.string("auth.jwks_file", "", false,
             "JWK Set of the keys that verify JWTs (HS256, RS256, ES256) accepted besides "
             "session tokens (\"\": no JWTs)");
    s.string_list("auth.jwt_issuers", {}, false, "accepted iss values (empty: any)");
    s.string_list("auth.jwt_audiences", {}, false,
                  "aud must hold one of these (empty: not checked)");
    s.string_list("auth.jwt_algorithms", {"HS256", "RS256", "ES256"}, false,
                  "JWT algorithms accepted");
    s.integer("auth.jwt_leeway_seconds", 60, 0, 3600, false,
              "clock skew allowed on exp, nbf and iat");
    s.string("auth.session_public_keys_file", "", false,
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

void start(daemon::Runtime& rt) {
    const auto& cfg = rt.config();
    std::optional<auth::SessionVerifier> verifier;
    if (const auto& keys = cfg.string("auth.session_public_keys_file"); !keys.empty())
        verifier = auth::SessionVerifier::from_file(keys);
    g_proxy = std::make_unique<gatewayd::Proxy>(
        rt.loop(), proxy_config(cfg), std::move(verifier),
        gatewayd::ProxyOptions{.connections_per_member = static_cast<std::size_t>(
                                   cfg.integer("proxy.connections_per_member")),
                               .metrics = &rt.metrics(),
                               .jwt = jwt_verifier(cfg)});

    g_public.get("/healthz", [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
    });
    auto entry = [&rt, filter = public_filter(cfg)](http::Request& r, http::Reply reply) {
        if (!filter.admits(r.remote_address))
            throw http::Error(403, "forbidden", "this gateway does not serve your address");
        if (g_proxy->handle(r, reply)) return;
        if (r.method != "GET" && r.method != "HEAD")
            throw http::Error(404, "not_found", "no route for " + r.path);
        auto it = r.params.find("path");
        reply(gatewayd::serve_static(rt.config().string("public.web_root"),
                                     it == r.params.end() ? "" : it->second));
    };
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
        g_public.add_async(m, "/", entry);
        g_public.add_async(m, "/{path...}", entry);
    }
    rt.add_listener("public", cfg.string_list("public.listen"), g_public);
}

void stop(daemon::Runtime&) {
    g_proxy.reset(); // its clients live on the loop
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
            },
        .start = start,
        .stop = stop,
        // Bodies are read into memory in pieces of this size; libmicrohttpd zeroes a
        // connection's pool (headers + this) before every request, so it stays small.
        .http_body_buffer_bytes = 32 * 1024,
    };
    return daemon::main(argc, argv, spec);
}

// strata-gatewayd: the public HTTP entry of Strata.
// This release has the common daemon runtime and a public listener that proxies the routes
// of [proxy] to their upstream pools (proxy.hh: balancing, kept-alive connections, the
// verified identity passed upstream, request ids, per-route rate limits, 502/504 in the error
// shape), and serves the web client's static files and /healthz for everything no route
// takes. TLS, JWT, caching, transforms, health checks, WebSocket and hot reload of routes come
// with the rest of the gateway's issue.
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
                  "[burst=N] [rate_key=ip|user|api_key|route]]\"",
                  each_item(gatewayd::parse_route));
    s.integer("proxy.connections_per_member", 64, 1, 4096, false,
              "kept-alive connections the gateway opens to each upstream member at most");
    s.string("auth.session_public_keys_file", "", false,
             "session token public keys, one hex key per line (\"\": tokens are passed on "
             "for the upstream to verify)");
}

struct ProxyConfig {
    std::vector<gatewayd::PoolSpec> pools;
    std::vector<gatewayd::RouteSpec> routes;
};

// Each item was checked by its key; this checks them together (routes name defined pools).
ProxyConfig proxy_config(const config::Config& cfg) {
    ProxyConfig pc;
    for (const auto& p : cfg.string_list("proxy.pools"))
        pc.pools.push_back(gatewayd::parse_pool(p));
    for (const auto& r : cfg.string_list("proxy.routes"))
        pc.routes.push_back(gatewayd::parse_route(r));
    gatewayd::check_proxy_config(pc.pools, pc.routes);
    return pc;
}

void start(daemon::Runtime& rt) {
    const auto& cfg = rt.config();
    auto [pools, routes] = proxy_config(cfg);
    std::optional<auth::SessionVerifier> verifier;
    if (const auto& keys = cfg.string("auth.session_public_keys_file"); !keys.empty())
        verifier = auth::SessionVerifier::from_file(keys);
    g_proxy = std::make_unique<gatewayd::Proxy>(
        rt.loop(), pools, std::move(routes), std::move(verifier),
        gatewayd::ProxyOptions{.connections_per_member = static_cast<std::size_t>(
                                   cfg.integer("proxy.connections_per_member")),
                               .metrics = &rt.metrics()});

    g_public.get("/healthz", [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
    });
    auto entry = [&rt](http::Request& r, http::Reply reply) {
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
        .check = [](const config::Config& c) { proxy_config(c); },
        .start = start,
        .stop = stop,
    };
    return daemon::main(argc, argv, spec);
}

// Unit tests of the gateway's pool and route syntax, route matching and path rewriting.
#include "proxy_config.hh"

#include <criterion/criterion.h>
#include <stdexcept>
#include <string>

using namespace strata::gatewayd;

static std::string refusal(std::string_view route) {
    try {
        parse_route(route);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

Test(proxy_config, pools_with_weights_and_balance) {
    auto p = parse_pool("app balance=least_conn http://127.0.0.1:8081 weight=3 unix:/run/a.sock "
                        "http://[::1]:80");
    cr_assert_eq(p.name, "app");
    cr_assert(p.balance == Balance::least_conn);
    cr_assert_eq(p.members.size(), 3u);
    cr_assert_eq(p.members[0].target, "http://127.0.0.1:8081");
    cr_assert_eq(p.members[0].weight, 3);
    cr_assert_eq(p.members[1].weight, 1);
    cr_assert_eq(p.members[2].target, "http://[::1]:80");
    cr_assert(parse_pool("x unix:/a").balance == Balance::round_robin);
}

Test(proxy_config, bad_pools_are_refused) {
    for (const char* bad :
         {"", "onlyname", "bad/name unix:/a", "p weight=2 unix:/a", "p unix:/a weight=0",
          "p unix:/a weight=101", "p unix:/a weight=x", "p http://host", "p http://host:0",
          "p http://host:70000", "p https://h:1", "p unix:", "p unix:/a balance=random",
          "p unix:/a balance=least_conn balance=round_robin", "p ftp://h:1"})
        cr_expect_throw(parse_pool(bad), std::invalid_argument, "accepted: %s", bad);
}

Test(proxy_config, routes_and_their_options) {
    auto r = parse_route("/v1/ pool=metad host=API.Example.com:443 methods=GET,HEAD rewrite=/x/ "
                         "timeout_ms=500 max_body=10 auth=required");
    cr_assert_eq(r.prefix, "/v1");
    cr_assert_eq(r.pool, "metad");
    cr_assert_eq(r.host, "api.example.com");
    cr_assert_eq(r.methods.size(), 2u);
    cr_assert_eq(*r.rewrite, "/x");
    cr_assert_eq(r.timeout_ms, 500u);
    cr_assert_eq(*r.max_body, 10u);
    cr_assert(r.auth == AuthMode::required);
    auto d = parse_route("/ pool=web");
    cr_assert_eq(d.prefix, "/");
    cr_assert(d.auth == AuthMode::optional);
    cr_assert_eq(d.timeout_ms, 30000u);
}

Test(proxy_config, bad_routes_say_why) {
    cr_assert(refusal("/x").find("no pool=NAME") != std::string::npos);
    cr_assert(refusal("x pool=a").find("must start with '/'") != std::string::npos);
    cr_assert(refusal("/a/../b pool=a").find("segment") != std::string::npos);
    cr_assert(refusal("/a//b pool=a").find("segment") != std::string::npos);
    cr_assert(refusal("/a pool=a pool=b").find("twice") != std::string::npos);
    cr_assert(refusal("/a pool=a frob=1").find("unknown route option") != std::string::npos);
    cr_assert(refusal("/a pool=a methods=get").find("upper-case") != std::string::npos);
    cr_assert(refusal("/a pool=a methods=GET,").find("upper-case") != std::string::npos);
    cr_assert(refusal("/a pool=a timeout_ms=0").find("timeout_ms") != std::string::npos);
    cr_assert(refusal("/a pool=a auth=maybe").find("auth is") != std::string::npos);
    cr_assert(refusal("/a pool=a rewrite=x").find("rewrite=") != std::string::npos);
    cr_assert(refusal("/a?b pool=a").find("character") != std::string::npos);
    cr_assert(refusal("/a pool=a host=").find("host=") != std::string::npos);
    cr_assert(refusal("/a pool").find("KEY=VALUE") != std::string::npos);
}

Test(proxy_config, whole_config_checks) {
    auto spec = [](std::vector<RouteSpec> routes) {
        ProxySpec s;
        s.pools = {parse_pool("a unix:/a"), parse_pool("b unix:/b")};
        s.routes = std::move(routes);
        s.header_rules = parse_header_rules({"sec response remove Server"});
        s.cors = parse_cors_policies({"web origins=https://a.test"});
        return s;
    };
    check_proxy_config(spec({parse_route("/x pool=a"), parse_route("/x pool=b host=h")}));
    check_proxy_config(spec({parse_route("/x pool=a headers=sec cors=web")}));
    cr_assert_throw(check_proxy_config(spec({parse_route("/x pool=c")})), std::invalid_argument);
    cr_assert_throw(check_proxy_config(spec({parse_route("/x pool=a headers=sec,nope")})),
                    std::invalid_argument);
    cr_assert_throw(check_proxy_config(spec({parse_route("/x pool=a cors=other")})),
                    std::invalid_argument);
    cr_assert_throw(check_proxy_config(spec({parse_route("/x pool=a"), parse_route("/x/ pool=b")})),
                    std::invalid_argument);
    auto twice = spec({});
    twice.pools.push_back(parse_pool("a unix:/c"));
    cr_assert_throw(check_proxy_config(twice), std::invalid_argument);
}

Test(proxy_config, filter_options) {
    auto r = parse_route("/x pool=a allow=10.0.0.0/8,::1 deny=10.9.0.0/16 require_headers=X-Api "
                         "forbid_headers=X-Debug,X-Trace headers=sec,cache cors=web compress=off");
    cr_assert(r.addresses.admits("10.1.2.3"));
    cr_assert_not(r.addresses.admits("10.9.2.3"));
    cr_assert(r.addresses.admits("::1"));
    cr_assert_not(r.addresses.admits("192.0.2.1"));
    cr_assert_eq(r.require_headers, (std::vector<std::string>{"X-Api"}));
    cr_assert_eq(r.forbid_headers.size(), 2u);
    cr_assert_eq(r.header_sets, (std::vector<std::string>{"sec", "cache"}));
    cr_assert_eq(r.cors, "web");
    cr_assert(r.compress.has_value() && !*r.compress);
    auto refusal = [](const char* text) {
        try {
            parse_route(text);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    cr_assert(refusal("/x pool=a allow=10.0.0.1/8").find("CIDR") != std::string::npos);
    cr_assert(refusal("/x pool=a deny=nope").find("CIDR") != std::string::npos);
    cr_assert(refusal("/x pool=a require_headers=X:Y").find("names") != std::string::npos);
    cr_assert(refusal("/x pool=a compress=yes").find("on or off") != std::string::npos);
    cr_assert(refusal("/x pool=a cors=").find("cors=") != std::string::npos);
    cr_assert_not(r.cache); // off unless asked
    cr_assert(parse_route("/x pool=a cache=on").cache);
    cr_assert_not(parse_route("/x pool=a cache=off").cache);
    cr_assert(refusal("/x pool=a cache=yes").find("cache is on or off") != std::string::npos);
    cr_assert(refusal("/x pool=a cache=on cache=off").find("twice") != std::string::npos);
}

Test(proxy_config, websocket_option) {
    cr_assert_not(parse_route("/x pool=a").websocket);
    cr_assert(parse_route("/x pool=a websocket=on").websocket);
    cr_assert_not(parse_route("/x pool=a websocket=off").websocket);
    try {
        parse_route("/x pool=a websocket=yes");
        cr_assert_fail("websocket=yes parsed");
    } catch (const std::invalid_argument& e) {
        cr_assert(std::string(e.what()).find("websocket is on or off") != std::string::npos);
    }
}

Test(proxy_config, longest_prefix_then_host) {
    RouteTable t({parse_route("/ pool=root"), parse_route("/v1 pool=api"),
                  parse_route("/v1/blocks pool=blocks"),
                  parse_route("/v1 pool=media host=m.test")});
    auto pool = [&](std::string_view host, std::string_view path) -> std::string {
        const RouteSpec* r = t.match(host, path);
        return r ? r->pool : "-";
    };
    cr_assert_eq(pool("a", "/v1/blocks/abc"), "blocks");
    cr_assert_eq(pool("a", "/v1/blocks"), "blocks");
    cr_assert_eq(pool("a", "/v1/blocksx"), "api");
    cr_assert_eq(pool("a", "/v1"), "api");
    cr_assert_eq(pool("a", "/v1x"), "root");
    cr_assert_eq(pool("M.TEST:8080", "/v1/x"), "media");
    cr_assert_eq(pool("m.test", "/v1/blocks/x"), "blocks"); // longer prefix first
    cr_assert_eq(pool("a", "/"), "root");
    cr_assert_eq(pool("a", "relative"), "-");
    RouteTable none({parse_route("/only pool=x")});
    cr_assert_null(none.match("h", "/other"));
}

Test(proxy_config, rewrite_replaces_the_prefix) {
    auto r = parse_route("/app pool=a rewrite=/inner");
    cr_assert_eq(rewrite_path(r, "/app"), "/inner");
    cr_assert_eq(rewrite_path(r, "/app/"), "/inner/");
    cr_assert_eq(rewrite_path(r, "/app/x/y"), "/inner/x/y");
    auto root = parse_route("/app pool=a rewrite=/");
    cr_assert_eq(rewrite_path(root, "/app/x"), "/x");
    cr_assert_eq(rewrite_path(root, "/app"), "/");
    auto from_root = parse_route("/ pool=a rewrite=/base");
    cr_assert_eq(rewrite_path(from_root, "/x"), "/base/x");
    auto keep = parse_route("/app pool=a");
    cr_assert_eq(rewrite_path(keep, "/app/x"), "/app/x");
}

Test(proxy_config, rate_options) {
    auto r = parse_route("/a pool=p rate=120/m");
    cr_assert(r.rate.has_value());
    cr_assert_float_eq(r.rate->per_second, 2.0, 1e-9);
    cr_assert_eq(r.rate->burst, 120u);
    cr_assert(r.rate->key == RateKey::ip);
    auto b = parse_route("/a pool=p burst=5 rate=10/s rate_key=user");
    cr_assert_float_eq(b.rate->per_second, 10.0, 1e-9);
    cr_assert_eq(b.rate->burst, 5u);
    cr_assert(b.rate->key == RateKey::user);
    cr_assert_float_eq(parse_route("/a pool=p rate=3600/h").rate->per_second, 1.0, 1e-9);
    cr_assert_not(parse_route("/a pool=p").rate.has_value());
    cr_assert(refusal("/a pool=p burst=5").find("need rate=") != std::string::npos);
    cr_assert(refusal("/a pool=p rate=10").find("N/s") != std::string::npos);
    cr_assert(refusal("/a pool=p rate=0/s").find("rate wants") != std::string::npos);
    cr_assert(refusal("/a pool=p rate=5/d").find("N/s") != std::string::npos);
    cr_assert(refusal("/a pool=p rate=5/s rate_key=x").find("rate_key is") != std::string::npos);
}

// strata-gatewayd: the public HTTP entry of Strata.
// This release has the common daemon runtime plus a public listener that serves the web
// client's static files and /healthz; auth, routing to the other daemons, TLS, rate limits,
// caching and WebSocket come with the gateway's own issue.
#include "daemon/runtime.hh"
#include "static_files.hh"

namespace {

using namespace strata;

http::Router g_public;

void extend_schema(config::Schema& s) {
    s.string_list("public.listen", {"[::]:80"}, false,
                  "TCP listeners (host:port) when systemd passes no 'public' socket");
    s.string("public.web_root", "/usr/share/strata/web", true,
             "directory of the web client served at /");
}

void start(daemon::Runtime& rt) {
    g_public.get("/healthz", [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
    });
    auto files = [&rt](http::Request& r) {
        auto it = r.params.find("path");
        return gatewayd::serve_static(rt.config().string("public.web_root"),
                                      it == r.params.end() ? "" : it->second);
    };
    g_public.get("/", files);
    g_public.get("/{path...}", files);
    rt.add_listener("public", rt.config().string_list("public.listen"), g_public);
}

} // namespace

int main(int argc, char** argv) {
    static const daemon::Spec spec{
        .name = "gatewayd",
        .summary = "Strata HTTP API gateway.",
        .extend_schema = extend_schema,
        .start = start,
    };
    return daemon::main(argc, argv, spec);
}

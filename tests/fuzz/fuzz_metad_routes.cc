// libFuzzer target for strata-metad's JSON request handlers: the first byte picks a route,
// the rest is the body (and, for routes with a path id, the id), dispatched through the real
// router onto a real MetaStore in a temporary directory. Handlers must answer every input
// with a status (never crash, never leave the store unreadable); 5xx is a finding.
#include "meta_store.hh"
#include "routes.hh"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

using namespace strata;

namespace {

struct World {
    std::filesystem::path dir;
    std::unique_ptr<metad::MetaStore> store;
    http::Router router;
    std::string alice_root, alice_id;

    World() {
        char tmpl[] = "/tmp/strata-fuzz-metad-XXXXXX";
        dir = mkdtemp(tmpl);
        store = std::make_unique<metad::MetaStore>(dir / "db", 1, std::size_t{1} << 30);
        metad::AuthOptions auth;
        auto signer = std::make_shared<auth::SessionSigner>(auth::SessionSigner::generate());
        auto verifier = std::make_shared<auth::SessionVerifier>();
        verifier->add_public_key_hex(signer->public_key_hex());
        auth.signer = signer;
        auth.verifier = verifier;
        auth.password_cost = auth::minimal_cost();
        metad::add_routes(router, *store, auth);
        auto u = store->create_user("alice", "alice@example.org", "x");
        alice_root = std::to_string(u.root);
        alice_id = std::to_string(u.id);
    }
    ~World() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

World& world() {
    static World w;
    return w;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    World& w = world();
    std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
    static const struct {
        const char* method;
        const char* path;
    } routes[] = {
        {"POST", "/v1/folders"},
        {"PATCH", "/v1/nodes/ROOT"},
        {"POST", "/v1/ids"},
        {"POST", "/v1/keys"},
        {"POST", "/v1/sessions"},
        {"GET", "/v1/stat"},
        {"GET", "/v1/nodes/ROOT/children"},
    };
    const auto& r = routes[data[0] % (sizeof routes / sizeof routes[0])];
    http::Request req;
    req.method = r.method;
    req.path = r.path;
    if (auto at = req.path.find("ROOT"); at != std::string::npos)
        req.path.replace(at, 4, w.alice_root);
    req.headers.emplace("Content-Type", "application/json");
    req.headers.emplace("X-Strata-Caller", "user=" + w.alice_id);
    req.peer = http::PeerCredentials{1, 0, 0};
    if (req.method == "GET") {
        // The body becomes query arguments instead.
        req.query.emplace(data[0] & 0x80 ? "cursor" : "path", body);
        req.query.emplace("limit", std::to_string(1 + data[0] % 5));
    } else {
        req.body = body;
    }
    http::Response resp = w.router.dispatch(req);
    if (resp.status < 200 || resp.status >= 500) {
        fprintf(stderr, "%s %s -> %d %s\n", req.method.c_str(), req.path.c_str(), resp.status,
                resp.body.c_str());
        std::abort();
    }
    return 0;
}

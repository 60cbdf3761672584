// strata-metad: the metadata server on LMDB. This release keeps users, sessions and each
// user's folder tree (routes.hh lists the API); files, sharing, search, feeds and events
// come next (see strata-metad(8), "Status in this release").
#include "auth/password.hh"
#include "auth/session_token.hh"
#include "backup_routes.hh"
#include "daemon/runtime.hh"
#include "log/log.hh"
#include "meta_store.hh"
#include "routes.hh"

#include <filesystem>
#include <memory>

namespace {

using namespace strata;

std::unique_ptr<metad::MetaStore> g_store;

void extend_schema(config::Schema& s) {
    s.integer("meta.node_id", 0, 0, 1023, false,
              "snowflake node id of this metad (unique among metad instances)");
    s.integer("meta.max_map_bytes", 1099511627776LL, 1048576, 17592186044416LL, false,
              "largest size the LMDB map may grow to; writes past it get 507");
    s.string("auth.session_key_file", "/etc/strata/session.key", false,
             "Ed25519 seed (64 hex digits) that signs session tokens; missing: logins get 503");
    s.integer("auth.session_ttl_seconds", 2592000, 60, 31536000, false,
              "lifetime of a session token");
    s.string("auth.password_cost", "interactive", false, "Argon2id cost of new password hashes",
             {"interactive", "minimal"});
}

void start(daemon::Runtime& rt) {
    const auto& cfg = rt.config();
    g_store = std::make_unique<metad::MetaStore>(
        rt.state_dir()->path() + "/db", static_cast<std::uint32_t>(cfg.integer("meta.node_id")),
        static_cast<std::size_t>(cfg.integer("meta.max_map_bytes")));
    metad::AuthOptions auth;
    const auto& key_file = cfg.string("auth.session_key_file");
    if (std::filesystem::exists(key_file)) {
        auto signer =
            std::make_shared<auth::SessionSigner>(auth::SessionSigner::from_seed_file(key_file));
        auto verifier = std::make_shared<auth::SessionVerifier>();
        verifier->add_public_key_hex(signer->public_key_hex());
        auth.signer = signer;
        auth.verifier = verifier;
    } else {
        log::notice("no session key at {}: logins are off", key_file);
    }
    auth.session_ttl_seconds = cfg.integer("auth.session_ttl_seconds");
    auth.password_cost = cfg.string("auth.password_cost") == "minimal" ? auth::minimal_cost()
                                                                       : auth::interactive_cost();
    metad::add_routes(rt.control_router(), *g_store, std::move(auth));
    metad::add_backup_routes(rt.control_router(), *g_store, rt.state_dir()->path());
}

} // namespace

int main(int argc, char** argv) {
    static const daemon::Spec spec{
        .name = "metad",
        .summary = "Strata metadata server on LMDB.",
        .state_dir = "/var/lib/strata/meta",
        .extend_schema = extend_schema,
        .start = start,
    };
    return daemon::main(argc, argv, spec);
}

#include "routes.hh"

#include "auth/api_key.hh"
#include "auth/encoding.hh"
#include "feeds.hh"
#include "file_routes.hh"
#include "outbox.hh"
#include "route_util.hh"

#include <charconv>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace strata::metad {

using namespace route_util;

namespace {

// {"name", "email", "password"} -> 201 the new user (sign-up, and operators adding users).
http::Response sign_up(Context& ctx, const http::Request& req) {
    auto j = body_object(req);
    std::string password = string_field(j, "password");
    if (password.size() < auth::min_password_bytes || password.size() > auth::max_password_bytes)
        throw http::Error(400, "invalid_password", "a password has 8 to 1024 bytes");
    std::string hash = auth::hash_password(password, ctx.auth.password_cost);
    return guarded_store([&] {
        User u = ctx.store.create_user(string_field(j, "name"), string_field(j, "email"),
                                       std::move(hash));
        return http::Response::json(201, user_view(u));
    });
}

void add_admin_routes(http::Router& router, const std::shared_ptr<Context>& ctx) {
    router.add_blocking("POST", "/v1/admin/users", [ctx](http::Request& req) {
        require_operator(req);
        return sign_up(*ctx, req);
    });
    router.get("/v1/admin/users", [ctx](http::Request& req) {
        require_operator(req);
        std::uint64_t after = 0;
        if (auto it = req.query.find("after"); it != req.query.end()) {
            auto id = id_of(json(it->second));
            if (!id) throw http::Error(400, "bad_request", "after is a user id");
            after = *id;
        }
        auto users = ctx->store.users(after, 1000);
        json items = json::array();
        for (const auto& u : users)
            items.push_back(user_view(u));
        json out = {{"items", items}, {"next_after", nullptr}};
        if (users.size() == 1000) out["next_after"] = id_str(users.back().id);
        return http::Response::json(200, out);
    });
    // {"disabled": bool}; the user is named by id or by name.
    router.add("PATCH", "/v1/admin/users/{user}", [ctx](http::Request& req) {
        require_operator(req);
        auto j = body_object(req);
        if (!j.contains("disabled") || !j["disabled"].is_boolean())
            throw http::Error(400, "bad_request", "expected {\"disabled\": true|false}");
        const std::string& who = req.params.at("user");
        auto id = id_of(json(who));
        auto u = id ? ctx->store.user(*id) : ctx->store.user_by_login(who);
        if (!u) throw http::Error(404, "unknown_user", "no user " + who);
        return guarded_store([&] {
            ctx->store.set_disabled(u->id, j["disabled"].get<bool>());
            return http::Response::json(200, user_view(*ctx->store.user(u->id)));
        });
    });
}

} // namespace

void add_routes(http::Router& router, MetaStore& store, AuthOptions auth, FileOptions files) {
    auto ctx = std::make_shared<Context>(store, std::move(auth));

    // Sign-up hashes the password (Argon2id: tens of ms), so it runs off the loop.
    router.add_blocking("POST", "/v1/users",
                        [ctx](http::Request& req) { return sign_up(*ctx, req); });
    router.add_blocking("POST", "/v1/sessions", [ctx](http::Request& req) {
        if (!ctx->auth.signer)
            throw http::Error(503, "sessions_not_configured",
                              "logins need auth.session_key_file (see metad.conf(5))");
        auto j = body_object(req);
        auto u = ctx->store.user_by_login(string_field(j, "login"));
        std::string password = string_field(j, "password");
        // The same answer, after the same work, for an unknown user and a wrong password.
        bool match = auth::verify_password(u && !u->disabled ? u->password_hash : ctx->dummy_hash(),
                                           password);
        if (!u || u->disabled || !match)
            throw http::Error(401, "invalid_login", "wrong user name or password");
        if (auth::needs_rehash(u->password_hash, ctx->auth.password_cost))
            ctx->store.set_password_hash(u->id,
                                         auth::hash_password(password, ctx->auth.password_cost));
        Session s = ctx->store.create_session(u->id, ctx->auth.session_ttl_seconds);
        std::string token = ctx->auth.signer->issue(
            {u->id, s.id, s.created, s.expires, {"files:read", "files:write"}});
        return http::Response::json(
            201, {{"token", token}, {"expires", s.expires}, {"user", user_view(*u)}});
    });
    router.add("DELETE", "/v1/sessions/current", [ctx](http::Request& req) {
        std::uint64_t session = 0;
        ctx->caller(req, nullptr, &session);
        if (!session)
            throw http::Error(400, "bad_request", "only a Bearer session can be signed out");
        ctx->store.revoke_session(session);
        http::Response r;
        r.status = 204;
        return r;
    });
    router.get("/v1/users/me", [ctx](http::Request& req) {
        auto u = ctx->store.user(ctx->caller(req));
        if (!u) throw http::Error(401, "unauthenticated", "no such user");
        return http::Response::json(200, user_view(*u));
    });

    add_tree_routes(router, ctx, std::move(files));
    add_share_routes(router, ctx);
    add_social_routes(router, ctx);
    add_key_verify_routes(router, ctx);

    router.post("/v1/ids", [ctx](http::Request& req) {
        std::size_t count = 1;
        if (!req.body.empty()) {
            auto j = body_object(req);
            auto c = j.value("count", json(1));
            if (!c.is_number_unsigned() || c.get<std::uint64_t>() < 1 ||
                c.get<std::uint64_t>() > 1000)
                throw http::Error(400, "bad_request", "count is 1..1000");
            count = c.get<std::size_t>();
        }
        json ids = json::array();
        for (std::uint64_t id : ctx->store.reserve_ids(count))
            ids.push_back(id_str(id));
        return http::Response::json(200, {{"ids", ids}});
    });
    add_admin_routes(router, ctx);

    // API keys: the token is shown once, at creation; metad keeps only its SHA-256.
    router.post("/v1/keys", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto j = body_object(req);
        std::string name = string_field(j, "name", false);
        if (name.size() > 100)
            throw http::Error(400, "bad_request", "a key name has at most 100 bytes");
        std::vector<std::string> scopes{"files:read"};
        if (j.contains("scopes")) {
            const auto& s = j["scopes"];
            if (!s.is_array() || s.empty() || s.size() > 16)
                throw http::Error(400, "bad_request", "\"scopes\" is a list of 1 to 16 scopes");
            scopes.clear();
            for (const auto& x : s) {
                if (!x.is_string() || (x != "files:read" && x != "files:write"))
                    throw http::Error(400, "bad_scope", "scopes are files:read and files:write");
                scopes.push_back(x.get<std::string>());
            }
        }
        auth::ApiKey key = auth::generate_api_key(ctx->store.next_id());
        ApiKeyRecord rec{
            key.id, caller, name, scopes, auth::api_key_digest(key.secret), std::time(nullptr),
            false};
        ctx->store.add_api_key(rec);
        return http::Response::json(201, {{"id", id_str(rec.id)},
                                          {"name", rec.name},
                                          {"scopes", rec.scopes},
                                          {"created", rec.created},
                                          {"token", key.token()}});
    });
    router.get("/v1/keys", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        json items = json::array();
        for (const auto& k : ctx->store.api_keys_of(caller))
            items.push_back({{"id", id_str(k.id)},
                             {"name", k.name},
                             {"scopes", k.scopes},
                             {"created", k.created},
                             {"revoked", k.revoked}});
        return http::Response::json(200, {{"items", items}});
    });
    router.add("DELETE", "/v1/keys/{id}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto id = id_of(json(req.params.at("id")));
        if (!id || !ctx->store.revoke_api_key(caller, *id))
            throw http::Error(404, "not_found", "no such key");
        http::Response r;
        r.status = 204;
        return r;
    });
    router.get("/v1/meta/stats", [ctx](http::Request&) {
        auto c = ctx->store.counts();
        auto queue_json = [](const queue::Counts& q) {
            return json{
                {"ready", q.ready}, {"delayed", q.delayed}, {"leased", q.leased}, {"dead", q.dead}};
        };
        json sinks = json::array();
        if (auto* o = ctx->store.outbox())
            for (const auto& s : o->stats())
                sinks.push_back({{"name", s.name},
                                 {"queue", queue_json(s.queue)},
                                 {"delivered", s.delivered},
                                 {"failed", s.failed}});
        return http::Response::json(200,
                                    {{"users", c.users},
                                     {"sessions", c.sessions},
                                     {"nodes", c.nodes},
                                     {"map_bytes", c.map_bytes},
                                     {"fanout", queue_json(ctx->store.feeds().queue().counts())},
                                     {"event_sinks", sinks}});
    });
}

void add_routes(http::Router& router, MetaStore& store, AuthOptions auth) {
    add_routes(router, store, std::move(auth), FileOptions{});
}

} // namespace strata::metad

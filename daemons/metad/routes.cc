#include "routes.hh"

#include "auth/api_key.hh"
#include "auth/encoding.hh"

#include <charconv>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace strata::metad {

namespace {

using nlohmann::json;

std::string id_str(std::uint64_t id) {
    return std::to_string(id);
}

// An id given as a decimal string or a JSON number.
std::optional<std::uint64_t> id_of(const json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (!v.is_string()) return std::nullopt;
    const auto& s = v.get_ref<const std::string&>();
    std::uint64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return out;
}

std::uint64_t path_id(const http::Request& req) {
    auto id = id_of(json(req.params.at("id")));
    if (!id) throw http::Error(404, "not_found", "no such file or folder");
    return *id;
}

json user_view(const User& u) {
    return {{"id", id_str(u.id)},     {"name", u.name},       {"email", u.email},
            {"root", id_str(u.root)}, {"created", u.created}, {"disabled", u.disabled}};
}

json node_view(const Node& n) {
    return {{"id", id_str(n.id)},       {"parent", n.parent ? json(id_str(n.parent)) : json()},
            {"name", n.name},           {"kind", to_string(n.kind)},
            {"owner", id_str(n.owner)}, {"version", n.version},
            {"created", n.created},     {"modified", n.modified}};
}

http::Response node_response(int status, const Node& n) {
    auto r = http::Response::json(status, node_view(n));
    r.headers.emplace("ETag", "\"" + std::to_string(n.version) + "\"");
    return r;
}

json body_object(const http::Request& req) {
    auto j = req.json();
    if (!j.is_object()) throw http::Error(400, "bad_request", "expected a JSON object");
    return j;
}

std::string string_field(const json& j, const char* name, bool required = true) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) {
        if (required)
            throw http::Error(400, "bad_request", std::string("missing \"") + name + "\"");
        return {};
    }
    if (!it->is_string())
        throw http::Error(400, "bad_request", std::string("\"") + name + "\" must be a string");
    return it->get<std::string>();
}

template <class F>
http::Response guarded_store(F&& fn) {
    try {
        return fn();
    } catch (const StoreError& e) {
        throw http::Error(e.status(), e.code(), e.what());
    }
}

struct Context {
    Context(MetaStore& s, AuthOptions a) : store(s), auth(std::move(a)) {}

    MetaStore& store;
    AuthOptions auth;

    // A hash of no one's password at the configured cost, made on first use. A login for an
    // unknown (or disabled) user is verified against it, so refusing it takes as long as
    // refusing a wrong password: the time of the answer does not tell which user exists.
    const std::string& dummy_hash() {
        std::call_once(dummy_once_, [&] {
            dummy_hash_ = auth::hash_password("no user has this password", auth.password_cost);
        });
        return dummy_hash_;
    }

    // The calling user's id; 401 when the request carries no valid identity, 403 when its
    // token or key lacks `scope` (X-Strata-Caller: the gateway has checked scopes already).
    std::uint64_t caller(const http::Request& req, const char* scope = nullptr,
                         std::uint64_t* session = nullptr) const {
        if (auto h = req.header("X-Strata-Caller"); h && req.peer) {
            std::string_view v = *h;
            if (v.substr(0, 5) == "user=") {
                if (auto id = id_of(json(std::string(v.substr(5))))) {
                    auto u = store.user(*id);
                    if (u && !u->disabled) return *id;
                }
            }
            throw http::Error(401, "unauthenticated", "X-Strata-Caller names no active user");
        }
        if (auto h = req.header("Authorization"); h && h->substr(0, 10) == "Bearer sk_") {
            // An API key: found by its id, its secret checked against the stored digest.
            auto key = auth::parse_api_key(h->substr(7));
            auto rec = key ? store.api_key(key->id) : std::nullopt;
            if (!rec || rec->revoked ||
                !auth::digests_equal(rec->digest, auth::api_key_digest(key->secret)))
                throw http::Error(401, "invalid_token", "the API key is not valid");
            auto u = store.user(rec->user);
            if (!u || u->disabled)
                throw http::Error(401, "invalid_token", "the key's user is disabled");
            require_scope(rec->scopes, scope);
            return rec->user;
        }
        if (auto h = req.header("Authorization"); h && h->substr(0, 7) == "Bearer ") {
            auth::SessionClaims c;
            if (!auth.verifier || auth.verifier->verify(h->substr(7), std::time(nullptr), &c) !=
                                      auth::SessionVerifier::Verdict::ok)
                throw http::Error(401, "invalid_token", "the session token is not valid");
            auto s = store.session(c.session);
            auto u = store.user(c.user);
            if (!s || s->revoked || !u || u->disabled)
                throw http::Error(401, "invalid_token", "the session has ended");
            require_scope(c.scopes, scope);
            if (session) *session = c.session;
            return c.user;
        }
        throw http::Error(401, "unauthenticated", "sign in first");
    }

private:
    static void require_scope(const std::vector<std::string>& have, const char* scope) {
        if (!scope) return;
        for (const auto& s : have)
            if (s == scope) return;
        throw http::Error(403, "insufficient_scope", std::string("this needs the scope ") + scope);
    }

    std::once_flag dummy_once_;
    std::string dummy_hash_;
};

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

// Operators' routes (stratactl meta user ...): only for a unix-socket peer that is root or
// metad's own user and that names no caller, so no user identity can reach them. The
// gateway does not route /v1/admin/ at all.
void require_operator(const http::Request& req) {
    if (!req.peer || (req.peer->uid != 0 && req.peer->uid != ::geteuid()) ||
        req.header("X-Strata-Caller") || req.header("Authorization"))
        throw http::Error(403, "forbidden", "operators only (stratactl on the control socket)");
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

void add_routes(http::Router& router, MetaStore& store, AuthOptions auth) {
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

    router.post("/v1/folders", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto j = body_object(req);
        auto parent = id_of(j.value("parent", json()));
        if (!parent) throw http::Error(400, "bad_request", "\"parent\" must be an id");
        return guarded_store([&] {
            return node_response(
                201, ctx->store.create_folder(caller, *parent, string_field(j, "name")));
        });
    });
    router.get("/v1/nodes/{id}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        return guarded_store(
            [&] { return node_response(200, ctx->store.stat(caller, path_id(req))); });
    });
    router.get("/v1/stat", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        auto it = req.query.find("path");
        if (it == req.query.end()) throw http::Error(400, "bad_request", "expected ?path=/...");
        return guarded_store(
            [&] { return node_response(200, ctx->store.stat_path(caller, it->second)); });
    });
    router.get("/v1/nodes/{id}/children", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        std::size_t limit = 100;
        if (auto it = req.query.find("limit"); it != req.query.end()) {
            auto [p, ec] =
                std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
            if (ec != std::errc() || p != it->second.data() + it->second.size() || limit < 1 ||
                limit > 1000)
                throw http::Error(400, "bad_request", "limit is 1..1000");
        }
        std::string cursor;
        if (auto it = req.query.find("cursor"); it != req.query.end() && !it->second.empty()) {
            auto raw = auth::from_base64url(it->second);
            if (!raw) throw http::Error(400, "bad_cursor", "not a cursor from a previous page");
            cursor = *raw;
        }
        return guarded_store([&] {
            auto page = ctx->store.list(caller, path_id(req), cursor, limit);
            json items = json::array();
            for (const auto& n : page.nodes)
                items.push_back(node_view(n));
            json out = {{"items", items}, {"next_cursor", nullptr}};
            if (!page.next_cursor.empty())
                out["next_cursor"] = auth::to_base64url(page.next_cursor);
            return http::Response::json(200, out);
        });
    });
    router.add("PATCH", "/v1/nodes/{id}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto j = body_object(req);
        std::optional<std::string> name;
        std::optional<std::uint64_t> parent;
        if (j.contains("name")) name = string_field(j, "name");
        if (j.contains("parent")) {
            parent = id_of(j["parent"]);
            if (!parent) throw http::Error(400, "bad_request", "\"parent\" must be an id");
        }
        std::uint64_t if_match = 0;
        if (auto h = req.header("If-Match")) {
            std::string_view v = *h;
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), if_match);
            if (ec != std::errc() || p != v.data() + v.size() || if_match == 0)
                throw http::Error(400, "bad_request", "If-Match takes the ETag of a stat");
        }
        return guarded_store([&] {
            return node_response(200,
                                 ctx->store.update(caller, path_id(req), name, parent, if_match));
        });
    });

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
        return http::Response::json(200, {{"users", c.users},
                                          {"sessions", c.sessions},
                                          {"nodes", c.nodes},
                                          {"map_bytes", c.map_bytes}});
    });
}

} // namespace strata::metad

// Sharing routes (the owner's) and public-link access (anyone with the token).
//
//   PUT    /v1/nodes/{id}/shares/{who}     {"role":"read"|"write"}; who: a user id, a user
//                                          name, or "followers" (read only) -> share
//   DELETE /v1/nodes/{id}/shares/{who}     -> 204
//   GET    /v1/nodes/{id}/shares           -> {"items":[share...]}
//   GET    /v1/shared?after=               what others share with you -> {"items":[...]}
//   POST   /v1/nodes/{id}/links            {"ttl"?: seconds, "password"?} -> 201 with the
//                                          token (shown once)
//   GET    /v1/nodes/{id}/links            -> {"items":[link...]} (no tokens)
//   DELETE /v1/nodes/{id}/links/{link}     -> 204
//   GET    /v1/links/{token}               the linked node (no sign-in; X-Link-Password
//                                          when the link has a password)
//   GET    /v1/links/{token}/nodes/{id}    a node below it
//   GET    /v1/links/{token}/nodes/{id}/children   a page of a folder below it
#include "auth/password.hh"
#include "route_util.hh"

namespace strata::metad {

using namespace route_util;

namespace {

constexpr std::int64_t kMaxLinkTtl = 10LL * 365 * 86400;

json share_view(const Share& s) {
    return {{"node", id_str(s.node)},
            {"grantee", s.grantee ? json(id_str(s.grantee)) : json("followers")},
            {"role", to_string(s.role)},
            {"by", id_str(s.by)},
            {"created", s.created}};
}

json link_view(const Link& l) {
    return {{"id", id_str(l.id)},
            {"node", id_str(l.node)},
            {"expires", l.expires ? json(l.expires) : json()},
            {"password", !l.password_hash.empty()},
            {"created", l.created}};
}

// A grantee named by id, by user name, or "followers" (0).
std::uint64_t grantee_of(Context& ctx, const std::string& who) {
    if (who == "followers") return 0;
    if (auto id = id_of(json(who))) return *id;
    auto u = ctx.store.user_by_login(who);
    if (!u || who.find('@') != std::string::npos)
        throw http::Error(404, "unknown_user", "no user " + who);
    return u->id;
}

} // namespace

// The principal a public link makes of its holder; 404 for unknown or expired tokens, 401
// when the link has a password and the request does not carry the right one.
Principal link_principal(Context& ctx, const http::Request& req) {
    auto link = ctx.store.link_by_token(req.params.at("token"));
    if (!link) throw http::Error(404, "not_found", "no such link (or it has expired)");
    if (!link->password_hash.empty()) {
        auto pw = req.header("X-Link-Password");
        if (!pw) throw http::Error(401, "password_required", "this link needs its password");
        if (!auth::verify_password(link->password_hash, *pw))
            throw http::Error(401, "wrong_password", "that is not the link's password");
    }
    return Principal{0, link->node};
}

void add_share_routes(http::Router& router, const std::shared_ptr<Context>& ctx) {
    router.add_blocking("PUT", "/v1/nodes/{id}/shares/{who}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto j = body_object(req);
        auto role = role_of(string_field(j, "role"));
        if (!role) throw http::Error(400, "bad_role", "role is read or write");
        std::uint64_t grantee = grantee_of(*ctx, req.params.at("who"));
        return guarded_store([&] {
            return http::Response::json(
                200, share_view(ctx->store.share(caller, path_id(req), grantee, *role)));
        });
    });
    router.add_blocking("DELETE", "/v1/nodes/{id}/shares/{who}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        std::uint64_t grantee = grantee_of(*ctx, req.params.at("who"));
        return guarded_store([&] {
            if (!ctx->store.unshare(caller, path_id(req), grantee))
                throw http::Error(404, "not_found", "no such share");
            return no_content();
        });
    });
    router.get("/v1/nodes/{id}/shares", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        return guarded_store([&] {
            json items = json::array();
            for (const auto& s : ctx->store.shares_of(caller, path_id(req)))
                items.push_back(share_view(s));
            return http::Response::json(200, {{"items", items}});
        });
    });
    router.get("/v1/shared", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        std::uint64_t after = 0;
        if (auto it = req.query.find("after"); it != req.query.end()) {
            auto id = id_of(json(it->second));
            if (!id) throw http::Error(400, "bad_request", "after is a node id");
            after = *id;
        }
        std::size_t limit = limit_param(req);
        json items = json::array();
        auto list = ctx->store.shared_with(caller, after, limit);
        for (const auto& [share, node] : list) {
            json v = node_view(node);
            v["access"] = to_string(share.role);
            v["shared_by"] = id_str(share.by);
            items.push_back(v);
        }
        json out = {{"items", items}, {"next_after", nullptr}};
        if (list.size() == limit) out["next_after"] = id_str(list.back().first.node);
        return http::Response::json(200, out);
    });

    // Hashing a link password (Argon2id) takes tens of ms: off the loop.
    router.add_blocking("POST", "/v1/nodes/{id}/links", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        json j = req.body.empty() ? json::object() : body_object(req);
        std::int64_t expires = 0;
        if (j.contains("ttl") && !j["ttl"].is_null()) {
            if (!j["ttl"].is_number_integer() || j["ttl"].get<std::int64_t>() < 1 ||
                j["ttl"].get<std::int64_t>() > kMaxLinkTtl)
                throw http::Error(400, "bad_request", "\"ttl\" is 1 second to 10 years");
            expires = std::time(nullptr) + j["ttl"].get<std::int64_t>();
        }
        std::string hash;
        if (auto pw = string_field(j, "password", false); !pw.empty()) {
            if (pw.size() > auth::max_password_bytes)
                throw http::Error(400, "invalid_password", "a password has at most 1024 bytes");
            hash = auth::hash_password(pw, ctx->auth.password_cost);
        }
        return guarded_store([&] {
            auto [link, token] = ctx->store.create_link(caller, path_id(req), expires, hash);
            json v = link_view(link);
            v["token"] = token;
            v["path"] = "/v1/links/" + token;
            return http::Response::json(201, v);
        });
    });
    router.get("/v1/nodes/{id}/links", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        return guarded_store([&] {
            json items = json::array();
            for (const auto& l : ctx->store.links_of(caller, path_id(req)))
                items.push_back(link_view(l));
            return http::Response::json(200, {{"items", items}});
        });
    });
    router.add_blocking("DELETE", "/v1/nodes/{id}/links/{link}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        auto link = id_of(json(req.params.at("link")));
        return guarded_store([&] {
            if (!link || !ctx->store.revoke_link(caller, path_id(req), *link))
                throw http::Error(404, "not_found", "no such link");
            return no_content();
        });
    });

    // Public access: blocking, since a password check is an Argon2id verification.
    router.add_blocking("GET", "/v1/links/{token}", [ctx](http::Request& req) {
        Principal who = link_principal(*ctx, req);
        return guarded_store(
            [&] { return node_response(200, ctx->store.stat(who, who.link_root), Role::read); });
    });
    router.add_blocking("GET", "/v1/links/{token}/nodes/{id}", [ctx](http::Request& req) {
        Principal who = link_principal(*ctx, req);
        return guarded_store(
            [&] { return node_response(200, ctx->store.stat(who, path_id(req)), Role::read); });
    });
    router.add_blocking("GET", "/v1/links/{token}/nodes/{id}/children", [ctx](http::Request& req) {
        Principal who = link_principal(*ctx, req);
        std::size_t limit = limit_param(req);
        std::string cursor = cursor_param(req);
        return guarded_store(
            [&] { return children_response(ctx->store, who, path_id(req), cursor, limit); });
    });
}

} // namespace strata::metad

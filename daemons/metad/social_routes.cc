// Search, follows and feeds.
//
//   GET    /v1/search?q=&limit=        over your tree and what is shared with you
//                                      -> {"items":[node + "score"...]}
//   PUT    /v1/follows/{user}          follow (a user id or name) -> {"following": true}
//   DELETE /v1/follows/{user}          unfollow -> 204
//   GET    /v1/follows?after=          whom you follow;  GET /v1/followers?after=  who follows you
//   GET    /v1/feed?before=&limit=     your feed, newest first -> {"items", "next_before"}
#include "feeds.hh"
#include "lmdb/txn.hh"
#include "route_util.hh"

namespace strata::metad {

using namespace route_util;

namespace {

std::uint64_t user_param(Context& ctx, const std::string& who) {
    if (auto id = id_of(json(who))) return *id;
    auto u = ctx.store.user_by_login(who);
    if (!u || who.find('@') != std::string::npos)
        throw http::Error(404, "unknown_user", "no user " + who);
    return u->id;
}

std::uint64_t id_query(const http::Request& req, const char* name) {
    auto it = req.query.find(name);
    if (it == req.query.end() || it->second.empty()) return 0;
    auto id = id_of(json(it->second));
    if (!id) throw http::Error(400, "bad_request", std::string(name) + " is an id");
    return *id;
}

} // namespace

void add_social_routes(http::Router& router, const std::shared_ptr<Context>& ctx) {
    router.get("/v1/search", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        auto it = req.query.find("q");
        if (it == req.query.end()) throw http::Error(400, "bad_request", "expected ?q=");
        if (it->second.size() > 1024)
            throw http::Error(400, "bad_request", "a query has at most 1024 bytes");
        std::size_t limit = limit_param(req, 20);
        json items = json::array();
        for (const auto& r : ctx->store.search(caller, it->second, limit)) {
            json v = node_view(r.node);
            v["score"] = r.score;
            items.push_back(v);
        }
        return http::Response::json(200, {{"items", items}});
    });
    router.add_blocking("PUT", "/v1/follows/{user}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        std::uint64_t who = user_param(*ctx, req.params.at("user"));
        return guarded_store([&] {
            ctx->store.follow(caller, who);
            return http::Response::json(200, {{"user", id_str(who)}, {"following", true}});
        });
    });
    router.add_blocking("DELETE", "/v1/follows/{user}", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:write");
        std::uint64_t who = user_param(*ctx, req.params.at("user"));
        if (!ctx->store.unfollow(caller, who))
            throw http::Error(404, "not_found", "you do not follow that user");
        return no_content();
    });
    for (bool followers : {false, true}) {
        router.get(
            followers ? "/v1/followers" : "/v1/follows", [ctx, followers](http::Request& req) {
                std::uint64_t caller = ctx->caller(req, "files:read");
                std::uint64_t after = id_query(req, "after");
                std::size_t limit = limit_param(req);
                return ctx->store.env().read([&](lmdb::Txn& t) {
                    auto list = followers ? ctx->store.feeds().followers(t, caller, after, limit)
                                          : ctx->store.feeds().following(t, caller, after, limit);
                    json items = json::array();
                    for (const auto& f : list)
                        items.push_back({{"user", id_str(f.user)}, {"since", f.since}});
                    json out = {{"items", items}, {"next_after", nullptr}};
                    if (list.size() == limit) out["next_after"] = id_str(list.back().user);
                    return http::Response::json(200, out);
                });
            });
    }
    router.get("/v1/feed", [ctx](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        std::uint64_t before = id_query(req, "before");
        std::size_t limit = limit_param(req, 50);
        FeedPage page = ctx->store.env().read(
            [&](lmdb::Txn& t) { return ctx->store.feeds().feed(t, caller, before, limit); });
        json items = json::array();
        for (const auto& item : page.items) {
            // Shown only while the reader may still see the node (unshared, trashed, purged
            // and expired entries drop out).
            json entry = {{"id", id_str(item.id)},
                          {"author", id_str(item.author)},
                          {"kind", item.kind},
                          {"created", item.created},
                          {"node", nullptr}};
            try {
                Node n = ctx->store.stat(Principal{caller}, item.node);
                if (n.trashed) continue;
                entry["node"] = node_view(n);
            } catch (const StoreError&) {
                // Not through the reader's own access: a public entry shows while a link
                // without password still opens the node.
                auto n = item.kind == "public" ? ctx->store.public_node(item.node) : std::nullopt;
                if (!n) continue;
                entry["node"] = node_view(*n);
            }
            items.push_back(entry);
        }
        json out = {{"items", items}, {"next_before", nullptr}};
        if (page.next) out["next_before"] = id_str(page.next);
        return http::Response::json(200, out);
    });
}

} // namespace strata::metad

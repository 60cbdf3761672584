// Shares (a user, or the owner's followers, given read or write on a node and all below it)
// and public links (read for whoever holds a token, with optional expiry and password).
#include "auth/api_key.hh"
#include "auth/encoding.hh"
#include "feeds.hh"
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "store_db.hh"

#include <sodium.h>

namespace strata::metad {

namespace {

using nlohmann::json;

Share share_of(std::uint64_t node, std::uint64_t grantee, std::string_view v) {
    json j = json::parse(v);
    return {node, grantee, role_of(j["role"].get<std::string>()).value_or(Role::read), j["by"],
            j["created"]};
}

json link_json(const Link& l) {
    return {{"id", l.id},
            {"node", l.node},
            {"owner", l.owner},
            {"expires", l.expires},
            {"password", l.password_hash},
            {"created", l.created}};
}

Link link_of(std::string_view digest, std::string_view v) {
    json j = json::parse(v);
    return {j["id"],       j["node"],    j["owner"],         j["expires"],
            j["password"], j["created"], std::string(digest)};
}

// The node, when the caller owns it and it is not in the trash (sharing is the owner's).
Access owned(lmdb::Txn& t, const StoreDb& db, std::uint64_t caller, std::uint64_t node,
             const std::function<bool(std::uint64_t, std::uint64_t)>& follows) {
    // With follows: a follower who can see the node gets 403, not 404.
    auto a = resolve(t, db, Principal{caller}, node, follows);
    if (!a || a->role == Role::none || a->in_trash) throw not_found();
    if (a->role != Role::owner) throw forbidden("only the owner shares a file or folder");
    return *a;
}

} // namespace

Share MetaStore::share(std::uint64_t caller, std::uint64_t node, std::uint64_t grantee, Role role) {
    if (role != Role::read && role != Role::write)
        throw StoreError(400, "bad_role", "a share gives read or write");
    if (grantee == 0 && role != Role::read)
        throw StoreError(400, "bad_role", "followers get read access only");
    if (grantee == caller) throw StoreError(400, "bad_grantee", "you own it already");
    if (grantee != 0) {
        auto u = user(grantee);
        if (!u || u->disabled) throw StoreError(404, "unknown_user", "no such user");
    }
    Share s{node, grantee, role, caller, now_ms()};
    write([&](lmdb::Txn& t) {
        Access a = owned(t, *db_, caller, node, follows_in(t));
        bool existed = t.get(db_->shares, be64(node) + be64(grantee)).has_value();
        t.put(db_->shares, be64(node) + be64(grantee),
              json{{"role", to_string(role)}, {"by", caller}, {"created", s.created}}.dump());
        if (grantee) t.put(db_->shares_in, be64(grantee) + be64(node), be64(caller));
        emit(t, "share.added", a.node, caller,
             {{"grantee", grantee ? json(std::to_string(grantee)) : json("followers")},
              {"role", to_string(role)},
              {"updated", existed}});
        // A file shared with followers goes to their feeds (fan-out on write).
        if (grantee == 0 && !existed && a.node.kind == NodeKind::file) {
            FeedItem item{next_id(),   a.node.owner,      a.node.id, "followers",
                          a.node.name, a.node.media_type, now_ms()};
            feeds_->publish(t, item);
            record_last_id(t, *db_, item.id);
        }
    });
    wake_workers();
    return s;
}

bool MetaStore::unshare(std::uint64_t caller, std::uint64_t node, std::uint64_t grantee) {
    bool removed = write([&](lmdb::Txn& t) {
        Access a = owned(t, *db_, caller, node, follows_in(t));
        if (!t.del(db_->shares, be64(node) + be64(grantee))) return false;
        if (grantee) t.del(db_->shares_in, be64(grantee) + be64(node));
        emit(t, "share.removed", a.node, caller,
             {{"grantee", grantee ? json(std::to_string(grantee)) : json("followers")}});
        return true;
    });
    wake_workers();
    return removed;
}

std::vector<Share> MetaStore::shares_of(std::uint64_t caller, std::uint64_t node) {
    return env_->read([&](lmdb::Txn& t) {
        owned(t, *db_, caller, node, follows_in(t));
        std::vector<Share> out;
        lmdb::Cursor c(t, db_->shares);
        for (auto [k, v] : c.prefix(be64(node)))
            out.push_back(share_of(node, from_be64(k.substr(8)), v));
        return out;
    });
}

std::vector<std::pair<Share, Node>> MetaStore::shared_with(std::uint64_t caller,
                                                           std::uint64_t after, std::size_t limit) {
    return env_->read([&](lmdb::Txn& t) {
        std::vector<std::pair<Share, Node>> out;
        if (after == UINT64_MAX) return out;
        lmdb::Cursor c(t, db_->shares_in);
        std::string prefix = be64(caller);
        for (auto [k, v] : c.from(prefix + be64(after + 1))) {
            if (k.substr(0, 8) != prefix || out.size() >= limit) break;
            std::uint64_t node = from_be64(k.substr(8));
            auto s = t.get(db_->shares, be64(node) + be64(caller));
            auto a = resolve(t, *db_, Principal{caller}, node, follows_in(t));
            if (!s || !a || a->role == Role::none) continue; // the share root is in the trash
            out.emplace_back(share_of(node, caller, *s), a->node);
        }
        return out;
    });
}

std::pair<Link, std::string> MetaStore::create_link(std::uint64_t caller, std::uint64_t node,
                                                    std::int64_t expires,
                                                    std::string password_hash) {
    unsigned char raw[18];
    randombytes_buf(raw, sizeof raw);
    std::string token =
        "pl_" + auth::to_base64url(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
    Link l{next_id(),
           node,
           caller,
           expires,
           std::move(password_hash),
           now_ms() / 1000,
           auth::api_key_digest(token)};
    write([&](lmdb::Txn& t) {
        Access a = owned(t, *db_, caller, node, follows_in(t));
        t.put(db_->links, l.digest, link_json(l).dump());
        t.put(db_->node_links, be64(node) + be64(l.id), l.digest);
        record_last_id(t, *db_, l.id);
        emit(t, "link.created", a.node, caller,
             {{"link", std::to_string(l.id)},
              {"expires", l.expires},
              {"password", !l.password_hash.empty()}});
        // Open to anyone: the owner's followers hear of it in their feeds.
        if (l.password_hash.empty()) {
            FeedItem item{next_id(),   a.node.owner,      a.node.id, "public",
                          a.node.name, a.node.media_type, now_ms()};
            feeds_->publish(t, item);
            record_last_id(t, *db_, item.id);
        }
    });
    wake_workers();
    return {l, token};
}

std::vector<Link> MetaStore::links_of(std::uint64_t caller, std::uint64_t node) {
    return env_->read([&](lmdb::Txn& t) {
        owned(t, *db_, caller, node, follows_in(t));
        std::vector<Link> out;
        lmdb::Cursor c(t, db_->node_links);
        for (auto [k, digest] : c.prefix(be64(node)))
            if (auto v = t.get(db_->links, digest)) out.push_back(link_of(digest, *v));
        return out;
    });
}

bool MetaStore::revoke_link(std::uint64_t caller, std::uint64_t node, std::uint64_t link_id) {
    bool removed = write([&](lmdb::Txn& t) {
        Access a = owned(t, *db_, caller, node, follows_in(t));
        auto digest = t.get(db_->node_links, be64(node) + be64(link_id));
        if (!digest) return false;
        std::string d(*digest);
        t.del(db_->links, d);
        t.del(db_->node_links, be64(node) + be64(link_id));
        emit(t, "link.revoked", a.node, caller, {{"link", std::to_string(link_id)}});
        return true;
    });
    wake_workers();
    return removed;
}

std::optional<Node> MetaStore::public_node(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<Node> {
        auto a = resolve(t, *db_, Principal{}, id, {}, /*publicity=*/true);
        if (!a || a->in_trash || !a->public_link) return std::nullopt;
        return a->node;
    });
}

std::optional<Link> MetaStore::link_by_token(std::string_view token) {
    if (token.size() > 64 || !token.starts_with("pl_")) return std::nullopt;
    std::string digest = auth::api_key_digest(token);
    return env_->read([&](lmdb::Txn& t) -> std::optional<Link> {
        auto v = t.get(db_->links, digest);
        if (!v) return std::nullopt;
        Link l = link_of(digest, *v);
        if (l.expires != 0 && l.expires <= now_ms() / 1000) return std::nullopt;
        return l;
    });
}

} // namespace strata::metad

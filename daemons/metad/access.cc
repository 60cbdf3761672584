// Who may see and change a node: decided by walking from the node up to its root folder, so
// a share or a link on a folder covers everything below it and a folder in the trash hides
// everything below it. The walk reads one node, one share key and (on request) the links of
// each folder on the way: a few B-tree lookups on the memory map per level.
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "store_db.hh"

#include <algorithm>

namespace strata::metad {

namespace {

// Trees are at most this deep (a corrupt parent chain must not loop forever).
constexpr int kMaxDepth = 4096;

bool has_open_link(lmdb::Txn& t, const StoreDb& db, std::uint64_t node) {
    lmdb::Cursor c(t, db.node_links);
    std::int64_t now = now_ms() / 1000;
    for (auto [k, digest] : c.prefix(be64(node))) {
        auto v = t.get(db.links, digest);
        if (!v) continue;
        auto j = nlohmann::json::parse(*v);
        std::int64_t expires = j["expires"];
        if (j["password"].get<std::string>().empty() && (expires == 0 || expires > now))
            return true;
    }
    return false;
}

} // namespace

StoreError not_found() {
    return StoreError(404, "not_found", "no such file or folder");
}

StoreError forbidden(const std::string& why) {
    return StoreError(403, "forbidden", why);
}

std::optional<Access> resolve(lmdb::Txn& t, const StoreDb& db, Principal who, std::uint64_t id,
                              const std::function<bool(std::uint64_t, std::uint64_t)>& follows,
                              bool publicity) {
    auto n = load_node(t, db, id);
    if (!n) return std::nullopt;
    Access a{*n};
    const bool owner = who.user != 0 && n->owner == who.user;
    Role role = owner ? Role::owner : Role::none;
    Node cur = *n;
    for (int depth = 0; depth < kMaxDepth; ++depth) {
        if (cur.trashed) a.in_trash = true;
        if (!owner && who.user != 0) {
            if (auto s = t.get(db.shares, be64(cur.id) + be64(who.user))) {
                auto r = role_of(nlohmann::json::parse(*s)["role"].get<std::string>());
                if (r) role = std::max(role, *r);
            }
        }
        if (t.get(db.shares, be64(cur.id) + be64(0))) {
            a.followers = true;
            if (!owner && who.user != 0 && role < Role::read && follows &&
                follows(who.user, cur.owner))
                role = Role::read;
        }
        if (who.link_root != 0 && cur.id == who.link_root) role = std::max(role, Role::read);
        if (publicity && !a.public_link && has_open_link(t, db, cur.id)) a.public_link = true;
        if (cur.parent == 0) break;
        auto p = load_node(t, db, cur.parent);
        if (!p) break;
        cur = std::move(*p);
    }
    if (a.in_trash && !owner) role = Role::none;
    a.role = role;
    return a;
}

} // namespace strata::metad

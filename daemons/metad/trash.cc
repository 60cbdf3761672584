// The trash: a trashed node leaves its folder's index (its name is free again) and keeps its
// parent, so it can go back there; everything below a trashed folder stays where it is,
// hidden by the access walk. Purge removes the node and its subtree for good.
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "search_index.hh"
#include "store_db.hh"

namespace strata::metad {

namespace {

// Removes a node and everything below it: records, folder index, search entries, shares and
// links. Returns how many nodes went.
std::size_t remove_subtree(lmdb::Txn& t, const StoreDb& db, SearchIndex& search,
                           std::uint64_t root) {
    std::size_t removed = 0;
    std::vector<std::uint64_t> todo{root};
    while (!todo.empty()) {
        std::uint64_t id = todo.back();
        todo.pop_back();
        std::vector<std::string> child_keys;
        {
            lmdb::Cursor c(t, db.children);
            for (auto [k, v] : c.prefix(be64(id))) {
                child_keys.emplace_back(k);
                todo.push_back(from_be64(v));
            }
        }
        for (const auto& k : child_keys)
            t.del(db.children, k);
        std::vector<std::string> share_keys, link_keys;
        {
            lmdb::Cursor c(t, db.shares);
            for (auto [k, v] : c.prefix(be64(id)))
                share_keys.emplace_back(k);
        }
        for (const auto& k : share_keys) {
            std::uint64_t grantee = from_be64(std::string_view(k).substr(8));
            if (grantee) t.del(db.shares_in, be64(grantee) + be64(id));
            t.del(db.shares, k);
        }
        {
            lmdb::Cursor c(t, db.node_links);
            for (auto [k, digest] : c.prefix(be64(id))) {
                link_keys.emplace_back(k);
                link_keys.emplace_back(digest);
            }
        }
        for (std::size_t i = 0; i + 1 < link_keys.size(); i += 2) {
            t.del(db.node_links, link_keys[i]);
            t.del(db.links, link_keys[i + 1]);
        }
        search.remove(t, id);
        if (t.del(db.nodes, be64(id))) ++removed;
    }
    return removed;
}

} // namespace

Node MetaStore::trash(std::uint64_t caller, std::uint64_t id, std::uint64_t if_match) {
    Node out = write([&](lmdb::Txn& t) {
        auto follows = follows_in(t);
        auto a = resolve(t, *db_, Principal{caller}, id, follows);
        if (!a || a->role == Role::none || a->in_trash) throw not_found();
        Node n = a->node;
        if (n.parent == 0) throw StoreError(400, "invalid_move", "a root folder cannot be trashed");
        // Removing an entry changes its folder: that needs write access to the folder (so
        // the root of a share stays, whoever was given write on it).
        auto p = resolve(t, *db_, Principal{caller}, n.parent, follows);
        if (!p || p->role < Role::write)
            throw forbidden("removing this needs write access to its folder");
        if (if_match && n.version != if_match)
            throw StoreError(412, "version_mismatch",
                             "the node is at version " + std::to_string(n.version));
        t.del(db_->children, child_key(n.parent, n.name));
        n.trashed = now_ms();
        ++n.version;
        store_node(t, *db_, n);
        t.put(db_->trash, be64(n.owner) + be64(n.id), "");
        emit(t, n.kind == NodeKind::file ? "file.trashed" : "folder.trashed", n, caller);
        return n;
    });
    wake_workers();
    return out;
}

Node MetaStore::restore(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name) {
    if (name) check_name(*name);
    Node out = write([&](lmdb::Txn& t) {
        auto n = load_node(t, *db_, id);
        if (!n || n->owner != caller || !t.get(db_->trash, be64(caller) + be64(id)))
            throw not_found();
        // Back to the old folder if it is still there and out of the trash; else the root.
        auto p = resolve(t, *db_, Principal{caller}, n->parent, follows_in(t));
        if (!p || p->in_trash || p->node.kind != NodeKind::folder) {
            auto root = user_root(t, *db_, caller);
            if (!root) throw not_found();
            n->parent = *root;
        }
        if (name) n->name = *name;
        if (!t.insert(db_->children, child_key(n->parent, n->name), be64(n->id)))
            throw StoreError(409, "name_taken",
                             "\"" + n->name + "\" exists there now: restore under another name");
        t.del(db_->trash, be64(caller) + be64(id));
        n->trashed = 0;
        ++n->version;
        n->modified = now_ms();
        store_node(t, *db_, *n);
        reindex(t, *n);
        emit(t, n->kind == NodeKind::file ? "file.restored" : "folder.restored", *n, caller);
        return *n;
    });
    wake_workers();
    return out;
}

std::size_t MetaStore::purge(std::uint64_t caller, std::uint64_t id) {
    std::size_t removed = write([&](lmdb::Txn& t) {
        auto n = load_node(t, *db_, id);
        if (!n || n->owner != caller || !t.get(db_->trash, be64(caller) + be64(id)))
            throw not_found();
        t.del(db_->trash, be64(caller) + be64(id));
        std::size_t count = remove_subtree(t, *db_, *search_, id);
        emit(t, n->kind == NodeKind::file ? "file.purged" : "folder.purged", *n, caller,
             {{"removed", count}});
        return count;
    });
    wake_workers();
    return removed;
}

MetaStore::Page MetaStore::list_trash(std::uint64_t caller, std::string_view cursor,
                                      std::size_t limit) {
    return env_->read([&](lmdb::Txn& t) {
        Page page;
        std::string prefix = be64(caller);
        std::string start = prefix + std::string(cursor);
        if (!cursor.empty()) start.push_back('\0');
        lmdb::Cursor c(t, db_->trash);
        for (auto [k, v] : c.from(start)) {
            if (k.substr(0, 8) != prefix) break;
            if (page.nodes.size() == limit) {
                page.next_cursor = be64(page.nodes.back().id);
                break;
            }
            if (auto n = load_node(t, *db_, from_be64(k.substr(8)))) page.nodes.push_back(*n);
        }
        return page;
    });
}

std::size_t MetaStore::empty_trash(std::uint64_t caller) {
    std::size_t removed = write([&](lmdb::Txn& t) {
        std::vector<std::uint64_t> ids;
        {
            lmdb::Cursor c(t, db_->trash);
            for (auto [k, v] : c.prefix(be64(caller)))
                ids.push_back(from_be64(k.substr(8)));
        }
        std::size_t count = 0;
        for (std::uint64_t id : ids) {
            t.del(db_->trash, be64(caller) + be64(id));
            auto n = load_node(t, *db_, id);
            std::size_t removed = remove_subtree(t, *db_, *search_, id);
            count += removed;
            if (n)
                emit(t, n->kind == NodeKind::file ? "file.purged" : "folder.purged", *n, caller,
                     {{"removed", removed}});
        }
        return count;
    });
    wake_workers();
    return removed;
}

} // namespace strata::metad

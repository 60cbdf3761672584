// One-shot uploads: the name is held by a placeholder in state "uploading" while the body
// streams in (others see the upload in the listing), then the content is filled in. A crash
// leaves placeholders behind: the `uploads` database lists them, so opening the store finds
// them without a scan and marks them failed (their owner can delete them).
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "search_index.hh"
#include "store_db.hh"

namespace strata::metad {

Node MetaStore::begin_upload(std::uint64_t caller, std::uint64_t parent, std::string name) {
    check_name(name);
    Node n;
    n.id = next_id();
    n.parent = parent;
    n.name = std::move(name);
    n.kind = NodeKind::file;
    n.creator = caller;
    n.created = n.modified = now_ms();
    n.state = FileState::uploading;
    write([&](lmdb::Txn& t) {
        n.owner = writable_folder(t, *db_, caller, parent, follows_in(t), false).node.owner;
        if (!t.insert(db_->children, child_key(parent, n.name), be64(n.id)))
            throw StoreError(409, "name_taken", "\"" + n.name + "\" already exists there");
        store_node(t, *db_, n);
        t.put(db_->uploads, be64(n.id), "");
        record_last_id(t, *db_, n.id);
    });
    return n;
}

Node MetaStore::finish_upload(std::uint64_t caller, std::uint64_t id, const FileCommit& c) {
    Node out = write([&](lmdb::Txn& t) {
        auto n = load_node(t, *db_, id);
        if (!n || !t.get(db_->uploads, be64(id)) || n->state != FileState::uploading)
            throw StoreError(409, "upload_cancelled",
                             "the upload's placeholder was removed meanwhile");
        t.del(db_->uploads, be64(id));
        n->size = c.size;
        n->media_type = c.media_type;
        n->sha256 = c.sha256;
        n->manifest = c.manifest;
        n->state = media_type_matches(options_.process_types, c.media_type) ? FileState::processing
                                                                            : FileState::ready;
        ++n->version;
        n->modified = now_ms();
        store_node(t, *db_, *n);
        reindex(t, *n);
        emit(t, "file.created", *n, caller);
        if (n->state == FileState::ready) emit(t, "file.ready", *n, caller);
        auto a = resolve(t, *db_, Principal{caller}, n->parent, follows_in(t), true);
        if (a && !a->in_trash && !n->trashed)
            publish_if_visible(t, *n, a->followers, a->public_link);
        return *n;
    });
    wake_workers();
    return out;
}

void MetaStore::abort_upload(std::uint64_t id) {
    write([&](lmdb::Txn& t) {
        if (!t.del(db_->uploads, be64(id))) return;
        auto n = load_node(t, *db_, id);
        if (!n) return;
        if (!n->trashed) t.del(db_->children, child_key(n->parent, n->name));
        t.del(db_->trash, be64(n->owner) + be64(id));
        search_->remove(t, id);
        t.del(db_->nodes, be64(id));
    });
}

void MetaStore::fail_stale_uploads() {
    write([&](lmdb::Txn& t) {
        std::vector<std::uint64_t> ids;
        {
            lmdb::Cursor c(t, db_->uploads);
            for (auto [k, v] : c.all())
                ids.push_back(from_be64(k));
        }
        for (std::uint64_t id : ids) {
            t.del(db_->uploads, be64(id));
            auto n = load_node(t, *db_, id);
            if (!n || n->state != FileState::uploading) continue;
            n->state = FileState::failed;
            ++n->version;
            store_node(t, *db_, *n);
        }
    });
}

} // namespace strata::metad

// The folder tree: folders, file commits, stat, listing, rename/move/retag, processing
// results. Every change updates the node, the folder index, the search index and the outbox
// in one write transaction.
#include "feeds.hh"
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "node_json.hh"
#include "outbox.hh"
#include "search_index.hh"
#include "store_db.hh"

#include <algorithm>
#include <cmath>

namespace strata::metad {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxTags = 32;
constexpr std::size_t kMaxTagBytes = 64;

void check_tags(const std::vector<std::string>& tags) {
    if (tags.size() > kMaxTags)
        throw StoreError(400, "invalid_tags", "at most 32 tags per file or folder");
    for (const auto& tag : tags) {
        if (tag.empty() || tag.size() > kMaxTagBytes)
            throw StoreError(400, "invalid_tags", "a tag has 1 to 64 bytes");
        try {
            check_name(tag);
        } catch (const StoreError&) {
            throw StoreError(400, "invalid_tags", "a tag is UTF-8 text without '/' or controls");
        }
    }
}

// Names of the folders from the root (excluded) down to `parent`.
std::vector<std::string> folder_path(lmdb::Txn& t, const StoreDb& db, std::uint64_t parent) {
    std::vector<std::string> names;
    for (int depth = 0; parent != 0 && depth < 4096; ++depth) {
        auto p = load_node(t, db, parent);
        if (!p || p->parent == 0) break;
        names.push_back(p->name);
        parent = p->parent;
    }
    std::reverse(names.begin(), names.end());
    return names;
}

SearchDoc doc_of(const Node& n, std::vector<std::string> path) {
    SearchDoc d;
    d.id = n.id;
    d.owner = n.owner;
    d.name = n.name;
    d.path = std::move(path);
    d.media_type = n.media_type;
    d.tags = n.tags;
    d.modified = n.modified;
    d.folder = n.kind == NodeKind::folder;
    return d;
}

json node_event_data(const Node& n) {
    json d = {{"owner", std::to_string(n.owner)},
              {"parent", std::to_string(n.parent)},
              {"name", n.name},
              {"kind", to_string(n.kind)},
              {"version", n.version}};
    if (n.kind == NodeKind::file) {
        d["size"] = n.size;
        d["type"] = n.media_type;
        d["sha256"] = n.sha256;
        d["manifest"] = n.manifest;
        d["state"] = to_string(n.state);
    }
    return d;
}

} // namespace

void MetaStore::emit(lmdb::Txn& t, const char* type, const Node& n, std::uint64_t user, json data) {
    if (!outbox_) return;
    json d = node_event_data(n);
    for (auto& [k, v] : data.items())
        d[k] = v;
    Event e{next_id(), type, user, n.id, now_ms(), std::move(d)};
    outbox_->emit(t, e);
    record_last_id(t, *db_, e.id);
}

// The index entries of a folder's descendants name its path: after a rename or move they
// are rewritten, in the same transaction (the cost grows with the subtree).
void MetaStore::reindex(lmdb::Txn& t, const Node& n) {
    search_->put(t, doc_of(n, folder_path(t, *db_, n.parent)));
    if (n.kind != NodeKind::folder) return;
    struct Item {
        std::uint64_t id;
        std::vector<std::string> path;
    };
    std::vector<Item> todo{{n.id, folder_path(t, *db_, n.parent)}};
    todo.back().path.push_back(n.name);
    while (!todo.empty()) {
        Item item = std::move(todo.back());
        todo.pop_back();
        std::vector<std::uint64_t> kids;
        {
            lmdb::Cursor c(t, db_->children);
            for (auto [k, v] : c.prefix(be64(item.id)))
                kids.push_back(from_be64(v));
        }
        for (std::uint64_t id : kids) {
            auto child = load_node(t, *db_, id);
            if (!child) continue;
            search_->put(t, doc_of(*child, item.path));
            if (child->kind == NodeKind::folder) {
                auto path = item.path;
                path.push_back(child->name);
                todo.push_back({id, std::move(path)});
            }
        }
    }
}

std::function<bool(std::uint64_t, std::uint64_t)> MetaStore::follows_in(lmdb::Txn& t) {
    return [this, &t](std::uint64_t a, std::uint64_t b) {
        auto f = feeds_->following(t, a, b - 1, 1); // the first followee from b on
        return !f.empty() && f.front().user == b;
    };
}

Access writable_folder(lmdb::Txn& t, const StoreDb& db, std::uint64_t caller, std::uint64_t parent,
                       const std::function<bool(std::uint64_t, std::uint64_t)>& follows,
                       bool publicity) {
    auto a = resolve(t, db, Principal{caller}, parent, follows, publicity);
    if (!a || a->role == Role::none || a->in_trash) throw not_found();
    if (a->node.kind != NodeKind::folder)
        throw StoreError(400, "not_a_folder", "the parent is not a folder");
    if (a->role < Role::write) throw forbidden("the folder is shared with you read-only");
    return *a;
}

Node MetaStore::create_folder(std::uint64_t caller, std::uint64_t parent, std::string name) {
    check_name(name);
    Node n;
    n.id = next_id();
    n.parent = parent;
    n.name = std::move(name);
    n.creator = caller;
    n.created = n.modified = now_ms();
    write([&](lmdb::Txn& t) {
        Access p = writable_folder(t, *db_, caller, parent, follows_in(t), false);
        n.owner = p.node.owner;
        if (!t.insert(db_->children, child_key(parent, n.name), be64(n.id)))
            throw StoreError(409, "name_taken", "\"" + n.name + "\" already exists there");
        store_node(t, *db_, n);
        search_->put(t, doc_of(n, folder_path(t, *db_, parent)));
        record_last_id(t, *db_, n.id);
        emit(t, "folder.created", n, caller);
    });
    wake_workers();
    return n;
}

Node MetaStore::new_file(std::uint64_t caller, const FileCommit& f) {
    check_name(f.name);
    check_tags(f.tags);
    Node n;
    n.id = next_id();
    n.parent = f.parent;
    n.name = f.name;
    n.kind = NodeKind::file;
    n.creator = caller;
    n.created = n.modified = now_ms();
    n.tags = f.tags;
    n.size = f.size;
    n.media_type = f.media_type;
    n.sha256 = f.sha256;
    n.manifest = f.manifest;
    n.state = media_type_matches(options_.process_types, f.media_type) ? FileState::processing
                                                                       : FileState::ready;
    return n;
}

void MetaStore::commit_in(lmdb::Txn& t, std::uint64_t caller, const FileCommit& f, Node& n) {
    Access p = writable_folder(t, *db_, caller, f.parent, follows_in(t), true);
    n.owner = p.node.owner;
    if (!t.insert(db_->children, child_key(f.parent, n.name), be64(n.id)))
        throw StoreError(409, "name_taken", "\"" + n.name + "\" already exists there");
    store_node(t, *db_, n);
    search_->put(t, doc_of(n, folder_path(t, *db_, f.parent)));
    if (!f.verified_key.empty())
        t.put(db_->verified, f.verified_key,
              json{{"size", f.size},
                   {"sha256", f.sha256},
                   {"type", f.media_type},
                   {"manifest", f.manifest},
                   {"scan", f.scan}}
                  .dump());
    record_last_id(t, *db_, n.id);
    emit(t, "file.created", n, caller);
    if (n.state == FileState::ready) emit(t, "file.ready", n, caller);
    publish_if_visible(t, n, p.followers, p.public_link);
}

Node MetaStore::commit_file(std::uint64_t caller, const FileCommit& f) {
    Node n = new_file(caller, f);
    write([&](lmdb::Txn& t) { commit_in(t, caller, f, n); });
    wake_workers();
    return n;
}

void MetaStore::commit_file_async(std::uint64_t caller, FileCommit f, NodeDone done) {
    auto n = std::make_shared<Node>(new_file(caller, f));
    write_async([=, this, f = std::move(f)](lmdb::Txn& t) { commit_in(t, caller, f, *n); },
                [n, done = std::move(done)](std::exception_ptr e) { done(std::move(*n), e); });
}

void MetaStore::publish_if_visible(lmdb::Txn& t, const Node& n, bool followers, bool public_link) {
    if (!followers && !public_link) return;
    FeedItem item{next_id(), n.owner,      n.id,     public_link ? "public" : "followers",
                  n.name,    n.media_type, n.created};
    feeds_->publish(t, item);
    record_last_id(t, *db_, item.id);
}

std::optional<Verified> MetaStore::verified(std::string_view key) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<Verified> {
        auto v = t.get(db_->verified, key);
        if (!v) return std::nullopt;
        json j = json::parse(*v);
        return Verified{j["size"], j["sha256"], j["type"], j["manifest"], j["scan"]};
    });
}

Node MetaStore::stat(Principal who, std::uint64_t id, Role* role) {
    return env_->read([&](lmdb::Txn& t) {
        auto a = resolve(t, *db_, who, id, follows_in(t));
        if (!a || a->role == Role::none) throw not_found();
        if (role) *role = a->role;
        return a->node;
    });
}

Node MetaStore::stat_path(std::uint64_t caller, std::string_view path) {
    // Everything reachable through the folder index from the caller's root is theirs and
    // not in the trash (trashed nodes leave the index), so no access walk is needed.
    return env_->read([&](lmdb::Txn& t) {
        auto root = user_root(t, *db_, caller);
        if (!root) throw not_found();
        std::uint64_t id = *root;
        while (!path.empty()) {
            if (path.front() == '/') {
                path.remove_prefix(1);
                continue;
            }
            auto slash = path.find('/');
            std::string_view part = path.substr(0, slash);
            path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
            if (part.size() > 255) throw not_found(); // no name is longer (nor a key)
            auto child = t.get(db_->children, child_key(id, part));
            if (!child) throw not_found();
            id = from_be64(*child);
        }
        auto n = load_node(t, *db_, id);
        if (!n || n->owner != caller) throw not_found();
        return *n;
    });
}

MetaStore::Page MetaStore::list(Principal who, std::uint64_t folder, std::string_view cursor,
                                std::size_t limit) {
    Page page;
    page.next_cursor = list_each(who, folder, cursor, limit,
                                 [&](const NodeView& v) { page.nodes.push_back(node_of(v)); });
    return page;
}

// Walks a page of folder's children entries in name order, calling entry(key, value) for
// each; returns the next cursor ("" at the end). 404 unless who may see the folder.
template <class Entry>
std::string MetaStore::walk_children(lmdb::Txn& t, Principal who, std::uint64_t folder,
                                     std::string_view cursor, std::size_t limit, Entry&& entry) {
    auto a = resolve(t, *db_, who, folder, follows_in(t));
    if (!a || a->role == Role::none || a->in_trash) throw not_found();
    if (a->node.kind != NodeKind::folder)
        throw StoreError(400, "not_a_folder", "only folders have children");
    std::string prefix = be64(folder);
    // The cursor is the folded name of the last entry returned: continue after it.
    std::string start = prefix + std::string(cursor);
    if (!cursor.empty()) start.push_back('\0');
    lmdb::Cursor c(t, db_->children);
    std::size_t given = 0;
    std::string_view last; // children key of the last node given
    for (auto [k, v] : c.from(start)) {
        if (k.substr(0, 8) != prefix) break;
        if (given == limit) return std::string(given ? last.substr(8) : std::string_view());
        if (!entry(v)) continue;
        ++given;
        last = k;
    }
    return std::string();
}

// The record a children value names, as a view (records of earlier releases are decoded
// into the buffers); false when the record is gone.
static bool child_record(lmdb::Txn& t, const StoreDb& db, std::string_view value, NodeView& view,
                         Node& old, std::string& tags, std::string& renditions) {
    auto rec = t.get(db.nodes, value.substr(0, 8));
    if (!rec) return false;
    if (view_node(*rec, view)) return true;
    old = decode_node(*rec); // a record of an earlier release
    view = view_of(old, tags, renditions);
    return true;
}

std::string MetaStore::list_each(Principal who, std::uint64_t folder, std::string_view cursor,
                                 std::size_t limit,
                                 const std::function<void(const NodeView&)>& each) {
    return env_->read([&](lmdb::Txn& t) {
        return walk_children(t, who, folder, cursor, limit, [&](std::string_view v) {
            NodeView view;
            Node old;
            std::string tags, renditions;
            if (!child_record(t, *db_, v, view, old, tags, renditions)) return false;
            each(view);
            return true;
        });
    });
}

std::string MetaStore::list_json(Principal who, std::uint64_t folder, std::string_view cursor,
                                 std::size_t limit,
                                 const std::function<void(std::string_view)>& each) {
    return env_->read([&](lmdb::Txn& t) {
        std::string rendered;
        return walk_children(t, who, folder, cursor, limit, [&](std::string_view v) {
            if (auto j = child_json(v)) {
                each(*j);
                return true;
            }
            NodeView view; // an entry of an earlier release: rendered from the record
            Node old;
            std::string tags, renditions;
            if (!child_record(t, *db_, v, view, old, tags, renditions)) return false;
            rendered.clear();
            append_node_json(rendered, view);
            each(rendered);
            return true;
        });
    });
}

Node MetaStore::update(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name,
                       std::optional<std::uint64_t> parent, std::uint64_t if_match,
                       std::optional<std::vector<std::string>> tags) {
    if (name) check_name(*name);
    if (tags) check_tags(*tags);
    Node out =
        write([&](lmdb::Txn& t) { return update_in(t, caller, id, name, parent, if_match, tags); });
    wake_workers();
    return out;
}

void MetaStore::update_async(std::uint64_t caller, std::uint64_t id,
                             std::optional<std::string> name, std::optional<std::uint64_t> parent,
                             std::uint64_t if_match, std::optional<std::vector<std::string>> tags,
                             NodeDone done) {
    if (name) check_name(*name);
    if (tags) check_tags(*tags);
    auto out = std::make_shared<Node>();
    write_async(
        [=, this](lmdb::Txn& t) { *out = update_in(t, caller, id, name, parent, if_match, tags); },
        [out, done = std::move(done)](std::exception_ptr e) { done(std::move(*out), e); });
}

Node MetaStore::update_in(lmdb::Txn& t, std::uint64_t caller, std::uint64_t id,
                          const std::optional<std::string>& name,
                          const std::optional<std::uint64_t>& parent, std::uint64_t if_match,
                          const std::optional<std::vector<std::string>>& tags) {
    auto follows = follows_in(t);
    auto a = resolve(t, *db_, Principal{caller}, id, follows);
    if (!a || a->role == Role::none || a->in_trash) throw not_found();
    if (a->role < Role::write) throw forbidden("this is shared with you read-only");
    Node n = a->node;
    if (if_match && n.version != if_match)
        throw StoreError(412, "version_mismatch",
                         "the node is at version " + std::to_string(n.version));
    std::uint64_t new_parent = parent.value_or(n.parent);
    std::string new_name = name.value_or(n.name);
    if (n.parent == 0 && (new_parent != 0 || new_name != n.name))
        throw StoreError(400, "invalid_move", "a root folder stays put and keeps its name");
    if (new_parent != n.parent) {
        Access p = writable_folder(t, *db_, caller, new_parent, follows, false);
        if (p.node.owner != n.owner)
            throw StoreError(400, "cross_owner", "files move only within one owner's tree");
        // No cycles: the new parent must not be the node or one of its descendants.
        for (std::uint64_t up = new_parent; up != 0;) {
            if (up == id) throw StoreError(400, "invalid_move", "cannot move a folder into itself");
            auto un = load_node(t, *db_, up);
            if (!un) break;
            up = un->parent;
        }
    }
    bool moved = new_parent != n.parent || new_name != n.name;
    std::string old_key = child_key(n.parent, n.name);
    std::string new_key = child_key(new_parent, new_name);
    if (old_key != new_key) {
        if (!t.insert(db_->children, new_key, be64(id)))
            throw StoreError(409, "name_taken", "\"" + new_name + "\" already exists there");
        t.del(db_->children, old_key);
    }
    n.parent = new_parent;
    n.name = new_name;
    if (tags) n.tags = *tags;
    ++n.version;
    n.modified = now_ms();
    store_node(t, *db_, n);
    if (moved && n.kind == NodeKind::folder)
        reindex(t, n);
    else
        search_->put(t, doc_of(n, folder_path(t, *db_, n.parent)));
    emit(t, n.kind == NodeKind::file ? "file.updated" : "folder.updated", n, caller);
    return n;
}

namespace {

// The processing note as stored: {"percent", "stage"} while processing, {"error"} once
// failed, nothing once ready. Bounded, so a node record stays small.
std::string processing_json(FileState state, const json& p) {
    if (state == FileState::ready || (p.is_null() && state == FileState::processing)) return {};
    if (!p.is_object()) throw StoreError(400, "bad_processing", "processing is an object");
    json out = json::object();
    if (state == FileState::processing) {
        auto pct = p.find("percent");
        if (pct == p.end() || !pct->is_number() || !(pct->get<double>() >= 0) ||
            pct->get<double>() > 100)
            throw StoreError(400, "bad_processing", "processing.percent is a number 0..100");
        out["percent"] = std::round(pct->get<double>() * 10) / 10;
    }
    for (const char* key : {"stage", "error"}) {
        auto it = p.find(key);
        if (it == p.end()) continue;
        if (!it->is_string() || it->get<std::string>().size() > 1024)
            throw StoreError(400, "bad_processing",
                             std::string("processing.") + key +
                                 " is a string of at most 1024 bytes");
        out[key] = *it;
    }
    if (state == FileState::failed && !out.contains("error"))
        throw StoreError(400, "bad_processing", "a failed file's processing says its error");
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

Node MetaStore::set_file_state(std::uint64_t id, FileState state, const json& renditions,
                               const json& processing) {
    if (state != FileState::ready && state != FileState::failed && state != FileState::processing)
        throw StoreError(400, "bad_state", "a processed file is ready, failed or processing");
    if (!renditions.is_array() || renditions.size() > 64)
        throw StoreError(400, "bad_renditions", "renditions are a list of at most 64 objects");
    for (const auto& r : renditions)
        if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
            throw StoreError(400, "bad_renditions", "each rendition is an object with a name");
    std::string processing_text = processing_json(state, processing);
    Node out = write([&](lmdb::Txn& t) {
        auto n = load_node(t, *db_, id);
        if (!n || n->kind != NodeKind::file) throw not_found();
        n->state = state;
        n->renditions = renditions;
        n->processing = processing_text;
        ++n->version;
        n->modified = now_ms();
        store_node(t, *db_, *n);
        if (state != FileState::processing)
            emit(t, state == FileState::ready ? "file.ready" : "file.failed", *n, 0);
        return *n;
    });
    wake_workers();
    return out;
}

} // namespace strata::metad

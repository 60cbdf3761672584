// How nodes are stored: one JSON object per node, keyed by its big-endian id. Optional
// fields are left out when empty, so folders stay small.
#include "keys.hh"
#include "store_db.hh"

namespace strata::metad {

using nlohmann::json;

const char* to_string(NodeKind k) {
    return k == NodeKind::file ? "file" : "folder";
}

const char* to_string(FileState s) {
    switch (s) {
    case FileState::uploading:
        return "uploading";
    case FileState::processing:
        return "processing";
    case FileState::ready:
        return "ready";
    case FileState::failed:
        return "failed";
    }
    return "ready";
}

std::optional<FileState> file_state_of(std::string_view s) {
    for (auto st :
         {FileState::uploading, FileState::processing, FileState::ready, FileState::failed})
        if (s == to_string(st)) return st;
    return std::nullopt;
}

const char* to_string(Role r) {
    switch (r) {
    case Role::none:
        return "none";
    case Role::read:
        return "read";
    case Role::write:
        return "write";
    case Role::owner:
        return "owner";
    }
    return "none";
}

std::optional<Role> role_of(std::string_view s) {
    if (s == "read") return Role::read;
    if (s == "write") return Role::write;
    return std::nullopt;
}

std::string encode_node(const Node& n) {
    json j = {{"id", n.id},           {"owner", n.owner},          {"parent", n.parent},
              {"name", n.name},       {"kind", to_string(n.kind)}, {"version", n.version},
              {"created", n.created}, {"modified", n.modified}};
    if (n.creator && n.creator != n.owner) j["creator"] = n.creator;
    if (n.trashed) j["trashed"] = n.trashed;
    if (!n.tags.empty()) j["tags"] = n.tags;
    if (n.kind == NodeKind::file) {
        j["size"] = n.size;
        j["type"] = n.media_type;
        j["sha256"] = n.sha256;
        j["manifest"] = n.manifest;
        j["state"] = to_string(n.state);
        if (!n.renditions.empty()) j["renditions"] = n.renditions;
    }
    return j.dump();
}

Node decode_node(std::string_view v) {
    json j = json::parse(v);
    Node n;
    n.id = j["id"];
    n.owner = j["owner"];
    n.parent = j["parent"];
    n.name = j["name"];
    n.kind = j["kind"] == "file" ? NodeKind::file : NodeKind::folder;
    n.version = j["version"];
    n.created = j["created"];
    n.modified = j["modified"];
    n.creator = j.value("creator", n.owner);
    n.trashed = j.value("trashed", std::int64_t{0});
    if (auto it = j.find("tags"); it != j.end()) n.tags = it->get<std::vector<std::string>>();
    if (n.kind == NodeKind::file) {
        n.size = j["size"];
        n.media_type = j["type"];
        n.sha256 = j["sha256"];
        n.manifest = j["manifest"];
        n.state = file_state_of(j["state"].get<std::string>()).value_or(FileState::ready);
        if (auto it = j.find("renditions"); it != j.end()) n.renditions = *it;
    }
    return n;
}

std::optional<Node> load_node(lmdb::Txn& t, const StoreDb& db, std::uint64_t id) {
    auto v = t.get(db.nodes, be64(id));
    if (!v) return std::nullopt;
    return decode_node(*v);
}

void store_node(lmdb::Txn& t, const StoreDb& db, const Node& n) {
    t.put(db.nodes, be64(n.id), encode_node(n));
}

std::optional<std::uint64_t> user_root(lmdb::Txn& t, const StoreDb& db, std::uint64_t user) {
    auto v = t.get(db.users, be64(user));
    if (!v) return std::nullopt;
    return json::parse(*v)["root"].get<std::uint64_t>();
}

std::string child_key(std::uint64_t parent, std::string_view name) {
    return be64(parent) + fold_name(name);
}

void record_last_id(lmdb::Txn& t, const StoreDb& db, std::uint64_t id) {
    auto v = t.get(db.meta, "last_id");
    if (!v || from_be64(*v) < id) t.put(db.meta, "last_id", be64(id));
}

} // namespace strata::metad

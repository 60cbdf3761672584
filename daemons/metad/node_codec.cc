// How nodes are stored: one JSON object per node, keyed by its big-endian id. Optional
// fields are left out when empty, so folders stay small.
#include "keys.hh"
#include "node_json.hh"
#include "store_db.hh"

#include <stdexcept>

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

namespace {

// Records are read on every stat, listing and access walk, so they are a compact binary
// encoding (varints and length-prefixed strings) rather than JSON: decoding one is a few
// hundred nanoseconds. Layout, after the version byte kNodeV1:
//   varint id, owner, parent, version, zigzag created, zigzag modified, creator,
//   zigzag trashed, size; byte kind, byte state; string name, media_type, sha256, manifest;
//   varint tag count, tags; string renditions (JSON text, empty for none); string
//   processing (JSON text, empty for none; absent in records of earlier releases).
// Records written as JSON by earlier releases (they start with '{') are still read.
constexpr char kNodeV1 = 1;

void put_varint(std::string& out, std::uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::int64_t unzigzag(std::uint64_t v) {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

void put_string(std::string& out, std::string_view s) {
    put_varint(out, s.size());
    out.append(s);
}

struct Reader {
    std::string_view in;
    std::size_t pos = 0;

    [[noreturn]] static void corrupt() { throw std::runtime_error("damaged node record"); }
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= in.size()) corrupt();
            auto b = static_cast<unsigned char>(in[pos++]);
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        corrupt();
    }
    unsigned char byte() {
        if (pos >= in.size()) corrupt();
        return static_cast<unsigned char>(in[pos++]);
    }
    std::string_view string() {
        std::uint64_t n = varint();
        if (n > in.size() - pos) corrupt();
        std::string_view s = in.substr(pos, n);
        pos += n;
        return s;
    }
};

Node decode_json_node(std::string_view v) {
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
        if (auto it = j.find("processing"); it != j.end() && it->is_object())
            n.processing = it->dump();
    }
    return n;
}

} // namespace

std::string encode_node(const Node& n) {
    std::string out;
    out.reserve(64 + n.name.size() + n.media_type.size() + n.sha256.size() + n.manifest.size());
    out.push_back(kNodeV1);
    put_varint(out, n.id);
    put_varint(out, n.owner);
    put_varint(out, n.parent);
    put_varint(out, n.version);
    put_varint(out, zigzag(n.created));
    put_varint(out, zigzag(n.modified));
    put_varint(out, n.creator);
    put_varint(out, zigzag(n.trashed));
    put_varint(out, n.size);
    out.push_back(static_cast<char>(n.kind));
    out.push_back(static_cast<char>(n.state));
    put_string(out, n.name);
    put_string(out, n.media_type);
    put_string(out, n.sha256);
    put_string(out, n.manifest);
    put_varint(out, n.tags.size());
    for (const auto& t : n.tags)
        put_string(out, t);
    put_string(out, n.renditions.empty() ? std::string() : n.renditions.dump());
    put_string(out, n.processing);
    return out;
}

bool view_node(std::string_view record, NodeView& n) {
    if (!record.empty() && record.front() == '{') return false;
    Reader r{record};
    if (r.byte() != kNodeV1) Reader::corrupt();
    n.id = r.varint();
    n.owner = r.varint();
    n.parent = r.varint();
    n.version = r.varint();
    n.created = unzigzag(r.varint());
    n.modified = unzigzag(r.varint());
    n.creator = r.varint();
    n.trashed = unzigzag(r.varint());
    n.size = r.varint();
    unsigned char kind = r.byte(), state = r.byte();
    if (kind > 1 || state > 3) Reader::corrupt();
    n.kind = static_cast<NodeKind>(kind);
    n.state = static_cast<FileState>(state);
    n.name = r.string();
    n.media_type = r.string();
    n.sha256 = r.string();
    n.manifest = r.string();
    n.tag_count = r.varint();
    if (n.tag_count > 1024) Reader::corrupt();
    std::size_t tags_at = r.pos;
    for (std::uint64_t i = 0; i < n.tag_count; ++i)
        r.string();
    n.tags = record.substr(tags_at, r.pos - tags_at);
    n.renditions = r.string();
    n.processing = r.pos < record.size() ? r.string() : std::string_view();
    return true;
}

void for_each_tag(const NodeView& v, const std::function<void(std::string_view)>& each) {
    Reader r{v.tags};
    for (std::uint64_t i = 0; i < v.tag_count; ++i)
        each(r.string());
}

// The fields a Node and a NodeView share (strings copied or viewed).
template <class To, class From>
void copy_common_fields(To& to, const From& from) {
    to.id = from.id;
    to.owner = from.owner;
    to.parent = from.parent;
    to.version = from.version;
    to.created = from.created;
    to.modified = from.modified;
    to.creator = from.creator;
    to.trashed = from.trashed;
    to.size = from.size;
    to.kind = from.kind;
    to.state = from.state;
    to.name = from.name;
    to.media_type = from.media_type;
    to.sha256 = from.sha256;
    to.manifest = from.manifest;
    to.processing = from.processing;
}

Node node_of(const NodeView& v) {
    Node n;
    copy_common_fields(n, v);
    n.tags.reserve(v.tag_count);
    for_each_tag(v, [&](std::string_view t) { n.tags.emplace_back(t); });
    if (!v.renditions.empty()) n.renditions = json::parse(v.renditions);
    return n;
}

NodeView view_of(const Node& n, std::string& tags_buf, std::string& renditions_buf) {
    NodeView v;
    copy_common_fields(v, n);
    tags_buf.clear();
    for (const auto& t : n.tags)
        put_string(tags_buf, t);
    v.tag_count = n.tags.size();
    v.tags = tags_buf;
    renditions_buf =
        n.renditions.empty()
            ? std::string()
            : n.renditions.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    v.renditions = renditions_buf;
    return v;
}

Node decode_node(std::string_view v) {
    NodeView view;
    if (!view_node(v, view)) return decode_json_node(v);
    return node_of(view);
}

std::optional<Node> load_node(lmdb::Txn& t, const StoreDb& db, std::uint64_t id) {
    auto v = t.get(db.nodes, be64(id));
    if (!v) return std::nullopt;
    return decode_node(*v);
}

std::string child_value(const Node& n) {
    std::string v = be64(n.id);
    v.reserve(8 + 1 + 400);
    v.push_back(kChildJsonV1);
    append_node_json(v, n);
    return v;
}

std::optional<std::string_view> child_json(std::string_view value) {
    if (value.size() > 9 && value[8] == kChildJsonV1) return value.substr(9);
    return std::nullopt;
}

void store_node(lmdb::Txn& t, const StoreDb& db, const Node& n) {
    t.put(db.nodes, be64(n.id), encode_node(n));
    // Every node with a parent and out of the trash has a children entry (its callers add
    // or drop the key first); its listing JSON is refreshed with the record.
    if (n.parent && !n.trashed) t.put(db.children, child_key(n.parent, n.name), child_value(n));
}

bool media_type_matches(const std::vector<std::string>& patterns, std::string_view type) {
    for (const auto& p : patterns) {
        if (p == type || p == "*/*") return true;
        if (p.size() >= 2 && p.ends_with("/*") && type.starts_with(p.substr(0, p.size() - 1)))
            return true;
    }
    return false;
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

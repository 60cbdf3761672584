#include "meta_store.hh"

#include "keys.hh"
#include "lmdb/cursor.hh"
#include "lmdb/txn.hh"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace strata::metad {

namespace {

using nlohmann::json;

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80           ? 1
                        : (c >> 5) == 0x6  ? 2
                        : (c >> 4) == 0xe  ? 3
                        : (c >> 3) == 0x1e ? 4
                                           : 0;
        if (n == 0 || i + n > s.size()) return false;
        std::uint32_t cp = n == 1 ? c : c & (0xff >> (n + 1));
        for (std::size_t k = 1; k < n; ++k) {
            auto b = static_cast<unsigned char>(s[i + k]);
            if ((b >> 6) != 0x2) return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        static constexpr std::uint32_t min_for[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n;
    }
    return true;
}

json user_json(const User& u) {
    return {{"id", u.id},
            {"name", u.name},
            {"email", u.email},
            {"password", u.password_hash},
            {"root", u.root},
            {"created", u.created},
            {"disabled", u.disabled}};
}

User user_of(std::string_view v) {
    json j = json::parse(v);
    return {j["id"], j["name"], j["email"], j["password"], j["root"], j["created"], j["disabled"]};
}

json node_json(const Node& n) {
    return {{"id", n.id},           {"owner", n.owner},          {"parent", n.parent},
            {"name", n.name},       {"kind", to_string(n.kind)}, {"version", n.version},
            {"created", n.created}, {"modified", n.modified}};
}

Node node_of(std::string_view v) {
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
    return n;
}

// Records `id` as the last id issued, unless a later one is recorded already: ids are taken
// before the write transaction begins, and writers on the loop and on the thread pool may
// commit out of id order; "last_id" must never go back (ids stay unique over a restart even
// if the clock stepped back).
void record_last_id(lmdb::Txn& t, lmdb::Dbi meta, std::uint64_t id) {
    auto v = t.get(meta, "last_id");
    if (!v || from_be64(*v) < id) t.put(meta, "last_id", be64(id));
}

std::string child_key(std::uint64_t parent, std::string_view name) {
    return be64(parent) + fold_name(name);
}

} // namespace

const char* to_string(NodeKind k) {
    return k == NodeKind::file ? "file" : "folder";
}

void check_name(std::string_view name) {
    auto bad = [](const std::string& why) { throw StoreError(400, "invalid_name", why); };
    if (name.empty()) bad("a name cannot be empty");
    if (name.size() > 255) bad("a name has at most 255 bytes");
    if (name == "." || name == "..") bad("\".\" and \"..\" are not names");
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (c == '/') bad("a name cannot contain '/'");
        if (u < 0x20 || u == 0x7f) bad("a name cannot contain control characters");
    }
    if (!valid_utf8(name)) bad("a name must be UTF-8");
}

std::string fold_name(std::string_view name) {
    return lower(name);
}

MetaStore::MetaStore(const std::filesystem::path& dir, std::uint32_t node_id,
                     std::size_t max_map_bytes) {
    lmdb::EnvOptions opts;
    opts.max_map_size = max_map_bytes;
    env_ = std::make_unique<lmdb::Env>(dir, opts);
    users_ = env_->open_dbi("users");
    user_names_ = env_->open_dbi("user_names");
    user_emails_ = env_->open_dbi("user_emails");
    sessions_ = env_->open_dbi("sessions");
    api_keys_ = env_->open_dbi("api_keys");
    user_keys_ = env_->open_dbi("user_keys");
    nodes_ = env_->open_dbi("nodes");
    children_ = env_->open_dbi("children");
    meta_ = env_->open_dbi("meta");
    std::uint64_t last = env_->read([&](lmdb::Txn& t) {
        auto v = t.get(meta_, "last_id");
        return v ? from_be64(*v) : 0;
    });
    ids_ = std::make_unique<ids::Generator>(node_id, ids::Clock{}, last);
}

std::uint64_t MetaStore::next_id() {
    return ids_->next();
}

std::vector<std::uint64_t> MetaStore::reserve_ids(std::size_t count) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(next_id());
    if (!out.empty()) env_->write([&](lmdb::Txn& t) { record_last_id(t, meta_, out.back()); });
    return out;
}

User MetaStore::create_user(std::string name, std::string email, std::string password_hash) {
    name = lower(name);
    email = lower(email);
    if (name.size() < 3 || name.size() > 32 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
        throw StoreError(400, "invalid_name", "a user name is 3 to 32 of [a-z0-9_-]");
    auto at = email.find('@');
    // No spaces, '/' or control characters (NUL, DEL, ...): they have no place in an
    // address and would end up in logs and mail headers.
    bool bad_char = std::any_of(email.begin(), email.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f || c == '/';
    });
    if (email.size() > 254 || at == std::string::npos || at == 0 || at + 1 == email.size() ||
        bad_char)
        throw StoreError(400, "invalid_email", "not an email address");
    User u{next_id(), name, email, std::move(password_hash), next_id(), now_ms() / 1000, false};
    Node root;
    root.id = u.root;
    root.owner = u.id;
    root.created = root.modified = now_ms();
    env_->write([&](lmdb::Txn& t) {
        if (!t.insert(user_names_, u.name, be64(u.id)))
            throw StoreError(409, "name_taken", "the user name " + u.name + " is taken");
        if (!t.insert(user_emails_, u.email, be64(u.id)))
            throw StoreError(409, "email_taken", "that email address is already registered");
        t.put(users_, be64(u.id), user_json(u).dump());
        t.put(nodes_, be64(root.id), node_json(root).dump());
        record_last_id(t, meta_, u.root);
    });
    return u;
}

std::optional<User> MetaStore::user(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<User> {
        auto v = t.get(users_, be64(id));
        if (!v) return std::nullopt;
        return user_of(*v);
    });
}

std::optional<User> MetaStore::user_by_login(std::string_view login) {
    std::string key = lower(login);
    return env_->read([&](lmdb::Txn& t) -> std::optional<User> {
        auto id = t.get(key.find('@') == std::string::npos ? user_names_ : user_emails_, key);
        if (!id) return std::nullopt;
        auto v = t.get(users_, *id);
        if (!v) return std::nullopt;
        return user_of(*v);
    });
}

std::vector<User> MetaStore::users(std::uint64_t after, std::size_t limit) {
    return env_->read([&](lmdb::Txn& t) {
        std::vector<User> out;
        if (after == UINT64_MAX) return out; // nothing comes after the largest id
        lmdb::Cursor c(t, users_);
        for (auto [k, v] : c.from(be64(after + 1))) {
            if (out.size() >= limit) break;
            out.push_back(user_of(v));
        }
        return out;
    });
}

void MetaStore::set_disabled(std::uint64_t id, bool disabled) {
    env_->write([&](lmdb::Txn& t) {
        auto v = t.get(users_, be64(id));
        if (!v) throw StoreError(404, "unknown_user", "no such user");
        User u = user_of(*v);
        u.disabled = disabled;
        t.put(users_, be64(id), user_json(u).dump());
    });
}

void MetaStore::set_password_hash(std::uint64_t id, const std::string& hash) {
    env_->write([&](lmdb::Txn& t) {
        auto v = t.get(users_, be64(id));
        if (!v) throw StoreError(404, "unknown_user", "no such user");
        User u = user_of(*v);
        u.password_hash = hash;
        t.put(users_, be64(id), user_json(u).dump());
    });
}

std::size_t MetaStore::user_count() {
    return env_->read([&](lmdb::Txn& t) { return t.entries(users_); });
}

Session MetaStore::create_session(std::uint64_t user, std::int64_t ttl_seconds) {
    std::int64_t now = now_ms() / 1000;
    Session s{next_id(), user, now, now + ttl_seconds, false};
    env_->write([&](lmdb::Txn& t) {
        t.put(sessions_, be64(s.id),
              json{{"id", s.id},
                   {"user", s.user},
                   {"created", s.created},
                   {"expires", s.expires},
                   {"revoked", false}}
                  .dump());
        record_last_id(t, meta_, s.id);
    });
    return s;
}

std::optional<Session> MetaStore::session(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<Session> {
        auto v = t.get(sessions_, be64(id));
        if (!v) return std::nullopt;
        json j = json::parse(*v);
        return Session{j["id"], j["user"], j["created"], j["expires"], j["revoked"]};
    });
}

bool MetaStore::revoke_session(std::uint64_t id) {
    return env_->write([&](lmdb::Txn& t) {
        auto v = t.get(sessions_, be64(id));
        if (!v) return false;
        json j = json::parse(*v);
        j["revoked"] = true;
        t.put(sessions_, be64(id), j.dump());
        return true;
    });
}

namespace {

json key_json(const ApiKeyRecord& k) {
    return {{"id", k.id},          {"user", k.user},     {"name", k.name},
            {"scopes", k.scopes},  {"digest", k.digest}, {"created", k.created},
            {"revoked", k.revoked}};
}

ApiKeyRecord key_of(std::string_view v) {
    json j = json::parse(v);
    return {j["id"],     j["user"],    j["name"],   j["scopes"].get<std::vector<std::string>>(),
            j["digest"], j["created"], j["revoked"]};
}

} // namespace

void MetaStore::add_api_key(const ApiKeyRecord& key) {
    env_->write([&](lmdb::Txn& t) {
        t.put(api_keys_, be64(key.id), key_json(key).dump());
        t.put(user_keys_, be64(key.user) + be64(key.id), "");
        record_last_id(t, meta_, key.id);
    });
}

std::optional<ApiKeyRecord> MetaStore::api_key(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<ApiKeyRecord> {
        auto v = t.get(api_keys_, be64(id));
        if (!v) return std::nullopt;
        return key_of(*v);
    });
}

std::vector<ApiKeyRecord> MetaStore::api_keys_of(std::uint64_t user) {
    return env_->read([&](lmdb::Txn& t) {
        std::vector<ApiKeyRecord> out;
        lmdb::Cursor c(t, user_keys_);
        for (auto [k, v] : c.prefix(be64(user))) {
            auto rec = t.get(api_keys_, k.substr(8));
            if (rec) out.push_back(key_of(*rec));
        }
        return out;
    });
}

bool MetaStore::revoke_api_key(std::uint64_t user, std::uint64_t id) {
    return env_->write([&](lmdb::Txn& t) {
        auto v = t.get(api_keys_, be64(id));
        if (!v) return false;
        ApiKeyRecord k = key_of(*v);
        if (k.user != user) return false;
        k.revoked = true;
        t.put(api_keys_, be64(id), key_json(k).dump());
        return true;
    });
}

namespace {

// The node, if it exists and `caller` may see it (owner only, until sharing exists).
std::optional<Node> visible(lmdb::Txn& t, lmdb::Dbi nodes, std::uint64_t caller, std::uint64_t id) {
    auto v = t.get(nodes, be64(id));
    if (!v) return std::nullopt;
    Node n = node_of(*v);
    if (n.owner != caller) return std::nullopt;
    return n;
}

StoreError not_found() {
    return StoreError(404, "not_found", "no such file or folder");
}

} // namespace

Node MetaStore::create_folder(std::uint64_t caller, std::uint64_t parent, std::string name) {
    check_name(name);
    Node n;
    n.id = next_id();
    n.owner = caller;
    n.parent = parent;
    n.name = std::move(name);
    n.created = n.modified = now_ms();
    env_->write([&](lmdb::Txn& t) {
        auto p = visible(t, nodes_, caller, parent);
        if (!p) throw not_found();
        if (p->kind != NodeKind::folder)
            throw StoreError(400, "not_a_folder", "the parent is not a folder");
        if (!t.insert(children_, child_key(parent, n.name), be64(n.id)))
            throw StoreError(409, "name_taken", "\"" + n.name + "\" already exists there");
        t.put(nodes_, be64(n.id), node_json(n).dump());
        record_last_id(t, meta_, n.id);
    });
    return n;
}

Node MetaStore::stat(std::uint64_t caller, std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) {
        auto n = visible(t, nodes_, caller, id);
        if (!n) throw not_found();
        return *n;
    });
}

Node MetaStore::stat_path(std::uint64_t caller, std::string_view path) {
    auto u = user(caller);
    if (!u) throw not_found();
    return env_->read([&](lmdb::Txn& t) {
        auto n = visible(t, nodes_, caller, u->root);
        if (!n) throw not_found();
        while (!path.empty()) {
            if (path.front() == '/') {
                path.remove_prefix(1);
                continue;
            }
            auto slash = path.find('/');
            std::string_view part = path.substr(0, slash);
            path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
            auto child = t.get(children_, child_key(n->id, part));
            if (!child) throw not_found();
            n = visible(t, nodes_, caller, from_be64(*child));
            if (!n) throw not_found();
        }
        return *n;
    });
}

MetaStore::Page MetaStore::list(std::uint64_t caller, std::uint64_t folder, std::string_view cursor,
                                std::size_t limit) {
    return env_->read([&](lmdb::Txn& t) {
        auto f = visible(t, nodes_, caller, folder);
        if (!f) throw not_found();
        if (f->kind != NodeKind::folder)
            throw StoreError(400, "not_a_folder", "only folders have children");
        Page page;
        std::string prefix = be64(folder);
        // The cursor is the folded name of the last entry returned: continue after it.
        std::string start = prefix + std::string(cursor);
        if (!cursor.empty()) start.push_back('\0');
        lmdb::Cursor c(t, children_);
        for (auto [k, v] : c.from(start)) {
            if (k.substr(0, 8) != prefix) break;
            if (page.nodes.size() == limit) {
                page.next_cursor =
                    std::string(page.nodes.empty() ? "" : fold_name(page.nodes.back().name));
                break;
            }
            auto n = t.get(nodes_, v);
            if (n) page.nodes.push_back(node_of(*n));
        }
        return page;
    });
}

Node MetaStore::update(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name,
                       std::optional<std::uint64_t> parent, std::uint64_t if_match) {
    if (name) check_name(*name);
    return env_->write([&](lmdb::Txn& t) {
        auto n = visible(t, nodes_, caller, id);
        if (!n) throw not_found();
        if (if_match && n->version != if_match)
            throw StoreError(412, "version_mismatch",
                             "the node is at version " + std::to_string(n->version));
        if (n->parent == 0) throw StoreError(400, "invalid_move", "a root folder stays put");
        std::uint64_t new_parent = parent.value_or(n->parent);
        std::string new_name = name.value_or(n->name);
        if (new_parent != n->parent) {
            auto p = visible(t, nodes_, caller, new_parent);
            if (!p) throw not_found();
            if (p->kind != NodeKind::folder)
                throw StoreError(400, "not_a_folder", "the new parent is not a folder");
            // No cycles: the new parent must not be the node or one of its descendants.
            for (std::uint64_t a = new_parent; a != 0;) {
                if (a == id)
                    throw StoreError(400, "invalid_move", "cannot move a folder into itself");
                auto an = t.get(nodes_, be64(a));
                if (!an) break;
                a = node_of(*an).parent;
            }
        }
        std::string old_key = child_key(n->parent, n->name);
        std::string new_key = child_key(new_parent, new_name);
        if (old_key != new_key) {
            if (!t.insert(children_, new_key, be64(id)))
                throw StoreError(409, "name_taken", "\"" + new_name + "\" already exists there");
            t.del(children_, old_key);
        } else if (new_name != n->name) {
            t.put(children_, new_key, be64(id)); // only the case changed
        }
        n->parent = new_parent;
        n->name = new_name;
        ++n->version;
        n->modified = now_ms();
        t.put(nodes_, be64(id), node_json(*n).dump());
        return *n;
    });
}

MetaStore::Counts MetaStore::counts() {
    return env_->read([&](lmdb::Txn& t) {
        return Counts{t.entries(users_), t.entries(sessions_), t.entries(nodes_), env_->map_size()};
    });
}

} // namespace strata::metad

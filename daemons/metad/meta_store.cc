#include "meta_store.hh"

#include "feeds.hh"
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "lmdb/txn.hh"
#include "outbox.hh"
#include "search_index.hh"
#include "store_db.hh"
#include "utf8.hh"

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

} // namespace

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
                     std::size_t max_map_bytes)
    : MetaStore(dir, StoreOptions{.node_id = node_id, .max_map_bytes = max_map_bytes}) {}

MetaStore::MetaStore(const std::filesystem::path& dir, StoreOptions options)
    : db_(std::make_unique<StoreDb>()), options_(std::move(options)) {
    lmdb::EnvOptions opts;
    opts.max_map_size = options_.max_map_bytes;
    opts.map_size =
        std::min(opts.map_size, opts.max_map_size); // a small limit holds from the start
    opts.max_dbs = 160; // ours, the search index's and feeds', and 7 per queue
    env_ = std::make_unique<lmdb::Env>(dir, opts);
    StoreDb& d = *db_;
    for (auto [dbi, name] :
         std::initializer_list<std::pair<lmdb::Dbi*, const char*>>{{&d.users, "users"},
                                                                   {&d.user_names, "user_names"},
                                                                   {&d.user_emails, "user_emails"},
                                                                   {&d.sessions, "sessions"},
                                                                   {&d.api_keys, "api_keys"},
                                                                   {&d.user_keys, "user_keys"},
                                                                   {&d.nodes, "nodes"},
                                                                   {&d.children, "children"},
                                                                   {&d.meta, "meta"},
                                                                   {&d.shares, "shares"},
                                                                   {&d.shares_in, "shares_in"},
                                                                   {&d.links, "links"},
                                                                   {&d.node_links, "node_links"},
                                                                   {&d.trash, "trash"},
                                                                   {&d.verified, "verified"},
                                                                   {&d.uploads, "uploads"}})
        *dbi = env_->open_dbi(name);
    std::uint64_t last = env_->read([&](lmdb::Txn& t) {
        auto v = t.get(d.meta, "last_id");
        return v ? from_be64(*v) : 0;
    });
    ids_ = std::make_unique<ids::Generator>(options_.node_id, ids::Clock{}, last);
    search_ = std::make_unique<SearchIndex>(*env_);
    feeds_ = std::make_unique<Feeds>(*env_, FeedOptions{.max_entries = options_.feed_max_entries});
    if (!options_.sinks.empty()) outbox_ = std::make_unique<Outbox>(*env_, options_.sinks);
    group_ = std::make_unique<lmdb::GroupCommit>(*env_, 256, options_.commit_nice);
    fail_stale_uploads();
}

std::exception_ptr MetaStore::store_error_of(std::exception_ptr e) {
    if (!e) return e;
    try {
        std::rethrow_exception(e);
    } catch (const lmdb::Error& le) {
        if (le.code() == MDB_MAP_FULL)
            return std::make_exception_ptr(StoreError(
                507, "insufficient_storage", "the metadata store is full (meta.max_map_bytes)"));
    } catch (...) {
    }
    return e;
}

int MetaStore::commit_nice_error() const noexcept {
    return group_->nice_error();
}

std::uint64_t MetaStore::next_id() {
    return ids_->next();
}

std::vector<std::uint64_t> MetaStore::reserve_ids(std::size_t count) {
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(next_id());
    if (!out.empty()) write([&](lmdb::Txn& t) { record_last_id(t, *db_, out.back()); });
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
    write([&](lmdb::Txn& t) {
        if (!t.insert(db_->user_names, u.name, be64(u.id)))
            throw StoreError(409, "name_taken", "the user name " + u.name + " is taken");
        if (!t.insert(db_->user_emails, u.email, be64(u.id)))
            throw StoreError(409, "email_taken", "that email address is already registered");
        t.put(db_->users, be64(u.id), user_json(u).dump());
        store_node(t, *db_, root);
        record_last_id(t, *db_, u.root);
    });
    return u;
}

std::optional<User> MetaStore::user(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<User> {
        auto v = t.get(db_->users, be64(id));
        if (!v) return std::nullopt;
        return user_of(*v);
    });
}

std::optional<User> MetaStore::user_by_login(std::string_view login) {
    // LMDB keys are 1..511 bytes; no user name or address is empty or that long.
    if (login.empty() || login.size() > 254) return std::nullopt;
    std::string key = lower(login);
    return env_->read([&](lmdb::Txn& t) -> std::optional<User> {
        auto id =
            t.get(key.find('@') == std::string::npos ? db_->user_names : db_->user_emails, key);
        if (!id) return std::nullopt;
        auto v = t.get(db_->users, *id);
        if (!v) return std::nullopt;
        return user_of(*v);
    });
}

std::vector<User> MetaStore::users(std::uint64_t after, std::size_t limit) {
    return env_->read([&](lmdb::Txn& t) {
        std::vector<User> out;
        if (after == UINT64_MAX) return out; // nothing comes after the largest id
        lmdb::Cursor c(t, db_->users);
        for (auto [k, v] : c.from(be64(after + 1))) {
            if (out.size() >= limit) break;
            out.push_back(user_of(v));
        }
        return out;
    });
}

void MetaStore::set_disabled(std::uint64_t id, bool disabled) {
    write([&](lmdb::Txn& t) {
        auto v = t.get(db_->users, be64(id));
        if (!v) throw StoreError(404, "unknown_user", "no such user");
        User u = user_of(*v);
        u.disabled = disabled;
        t.put(db_->users, be64(id), user_json(u).dump());
    });
}

void MetaStore::set_password_hash(std::uint64_t id, const std::string& hash) {
    write([&](lmdb::Txn& t) {
        auto v = t.get(db_->users, be64(id));
        if (!v) throw StoreError(404, "unknown_user", "no such user");
        User u = user_of(*v);
        u.password_hash = hash;
        t.put(db_->users, be64(id), user_json(u).dump());
    });
}

std::size_t MetaStore::user_count() {
    return env_->read([&](lmdb::Txn& t) { return t.entries(db_->users); });
}

Session MetaStore::create_session(std::uint64_t user, std::int64_t ttl_seconds) {
    std::int64_t now = now_ms() / 1000;
    Session s{next_id(), user, now, now + ttl_seconds, false};
    write([&](lmdb::Txn& t) {
        t.put(db_->sessions, be64(s.id),
              json{{"id", s.id},
                   {"user", s.user},
                   {"created", s.created},
                   {"expires", s.expires},
                   {"revoked", false}}
                  .dump());
        record_last_id(t, *db_, s.id);
    });
    return s;
}

std::optional<Session> MetaStore::session(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<Session> {
        auto v = t.get(db_->sessions, be64(id));
        if (!v) return std::nullopt;
        json j = json::parse(*v);
        return Session{j["id"], j["user"], j["created"], j["expires"], j["revoked"]};
    });
}

bool MetaStore::revoke_session(std::uint64_t id) {
    return write([&](lmdb::Txn& t) {
        auto v = t.get(db_->sessions, be64(id));
        if (!v) return false;
        json j = json::parse(*v);
        j["revoked"] = true;
        t.put(db_->sessions, be64(id), j.dump());
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
    write([&](lmdb::Txn& t) {
        t.put(db_->api_keys, be64(key.id), key_json(key).dump());
        t.put(db_->user_keys, be64(key.user) + be64(key.id), "");
        record_last_id(t, *db_, key.id);
    });
}

std::optional<ApiKeyRecord> MetaStore::api_key(std::uint64_t id) {
    return env_->read([&](lmdb::Txn& t) -> std::optional<ApiKeyRecord> {
        auto v = t.get(db_->api_keys, be64(id));
        if (!v) return std::nullopt;
        return key_of(*v);
    });
}

std::vector<ApiKeyRecord> MetaStore::api_keys_of(std::uint64_t user) {
    return env_->read([&](lmdb::Txn& t) {
        std::vector<ApiKeyRecord> out;
        lmdb::Cursor c(t, db_->user_keys);
        for (auto [k, v] : c.prefix(be64(user))) {
            auto rec = t.get(db_->api_keys, k.substr(8));
            if (rec) out.push_back(key_of(*rec));
        }
        return out;
    });
}

bool MetaStore::revoke_api_key(std::uint64_t user, std::uint64_t id) {
    return write([&](lmdb::Txn& t) {
        auto v = t.get(db_->api_keys, be64(id));
        if (!v) return false;
        ApiKeyRecord k = key_of(*v);
        if (k.user != user) return false;
        k.revoked = true;
        t.put(db_->api_keys, be64(id), key_json(k).dump());
        return true;
    });
}

MetaStore::Counts MetaStore::counts() {
    return env_->read([&](lmdb::Txn& t) {
        return Counts{t.entries(db_->users), t.entries(db_->sessions), t.entries(db_->nodes),
                      env_->map_size()};
    });
}

} // namespace strata::metad

// strata-metad's data on LMDB: users, sessions and each user's tree of folders and files.
// Reads run in LMDB read transactions straight on the memory map (that is the metadata
// cache); every write is one LMDB write transaction, durable when it returns.
//
// Databases (keys are big-endian u64 ids, so LMDB's byte order is id order):
//   users        id -> JSON {id, name, email, password, root, created, disabled}
//   user_names   lowercase name -> id       (unique)
//   user_emails  lowercase email -> id      (unique)
//   sessions     id -> JSON {id, user, created, expires, revoked}
//   nodes        id -> JSON node (see Node)
//   children     parent id ++ folded name -> child id ++ 0x01 ++ the child's listing JSON
//                (unique names per folder; listings in name order, copied as stored, with
//                cursors; see child_value in store_db.hh)
//   api_keys     id -> JSON {id, user, name, scopes, digest, created, revoked}
//   user_keys    user id ++ key id -> ""    (a user's keys, for listing)
//   meta         "last_id" -> the last snowflake id issued (ids stay unique over restarts)
//   shares       node id ++ grantee id -> JSON {role, by, created}   (grantee 0: followers)
//   shares_in    grantee id ++ node id -> owner id     ("shared with me", search scope)
//   links        SHA-256 of a public link token -> JSON link (see Link)
//   node_links   node id ++ link id -> token digest  (a node's links, for listing)
//   trash        owner id ++ node id -> ""            (what each user's trash holds)
//   verified     SHA-256 of (block list, declared type) -> JSON blockd verification
//   uploads      node id -> ""                        (placeholders of uploads in flight)
//   search_*, feed_*, follow*, queue.fanout.*, queue.events-*.*: search_index.hh,
//                feeds.hh, outbox.hh
//
// Who sees what (a caller never learns that a node it may not see exists: 404): the owner
// sees their tree; a share gives a user read or write on a node and everything below it;
// a share to "followers" gives every follower of the owner read; a public link gives read
// on its node and below to anyone holding the token (and the password, when set). Nodes in
// the trash, and all below them, are seen by their owner only, through the trash routes and
// stat by id.
//
// Names: 1..255 bytes of UTF-8, no '/', no control characters, not "." or "..". Unique in a
// folder ignoring ASCII case, so a tree syncs to case-insensitive file systems.
#pragma once

#include "ids/ids.hh"
#include "lmdb/dbi.hh"
#include "lmdb/env.hh"
#include "lmdb/group_commit.hh"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata::metad {

// A refused operation, with the HTTP status and code it maps to.
class StoreError : public std::runtime_error {
public:
    StoreError(int status, std::string code, const std::string& message)
        : std::runtime_error(message), status_(status), code_(std::move(code)) {}
    int status() const noexcept { return status_; }
    const std::string& code() const noexcept { return code_; }

private:
    int status_;
    std::string code_;
};

struct User {
    std::uint64_t id = 0;
    std::string name;
    std::string email;
    std::string password_hash;
    std::uint64_t root = 0; // the user's root folder
    std::int64_t created = 0;
    bool disabled = false;
};

struct Session {
    std::uint64_t id = 0;
    std::uint64_t user = 0;
    std::int64_t created = 0;
    std::int64_t expires = 0;
    bool revoked = false;
};

// An API key: the secret itself is never stored, only its SHA-256 (auth::api_key_digest).
struct ApiKeyRecord {
    std::uint64_t id = 0;
    std::uint64_t user = 0;
    std::string name;
    std::vector<std::string> scopes;
    std::string digest;
    std::int64_t created = 0;
    bool revoked = false;
};

enum class NodeKind { folder, file };
// A file's life: processing (waiting for renditions), ready, failed (processing failed).
// "uploading" names files whose one-shot upload is still streaming in.
enum class FileState { uploading, processing, ready, failed };
// What a caller may do with a node, in increasing order.
enum class Role : std::uint8_t { none = 0, read = 1, write = 2, owner = 3 };

struct Node {
    std::uint64_t id = 0;
    std::uint64_t owner = 0;
    std::uint64_t parent = 0; // 0 for a root folder; kept while the node is in the trash
    std::string name;         // "" for a root folder
    NodeKind kind = NodeKind::folder;
    std::uint64_t version = 1; // bumped by every change (If-Match)
    std::int64_t created = 0;  // unix milliseconds
    std::int64_t modified = 0;
    std::uint64_t creator = 0; // who created it (the owner, or a user with write access)
    std::int64_t trashed = 0;  // when it was moved to the trash; 0: not in the trash
    std::vector<std::string> tags;
    // Files only.
    std::uint64_t size = 0;
    std::string media_type;
    std::string sha256;   // of the whole content
    std::string manifest; // blockd manifest id
    FileState state = FileState::ready;
    nlohmann::json renditions = nlohmann::json::array(); // [{"name","manifest","type",...}]
    // How processing goes, as compact JSON text ("" none): {"percent","stage"} while
    // processing, {"error"} when it failed. Kept as text: listings copy it as it is.
    std::string processing;
};

// A node record read in place, for listings: the strings point into the record (an LMDB
// value, valid until its transaction ends), so reading one allocates nothing.
struct NodeView {
    std::uint64_t id = 0, owner = 0, parent = 0, version = 1, creator = 0, size = 0;
    std::int64_t created = 0, modified = 0, trashed = 0;
    NodeKind kind = NodeKind::folder;
    FileState state = FileState::ready;
    std::string_view name, media_type, sha256, manifest;
    std::uint64_t tag_count = 0;
    std::string_view tags;       // tag_count length-prefixed strings (see node_codec.cc)
    std::string_view renditions; // JSON text; empty: none
    std::string_view processing; // JSON text; empty: none
};

struct Share {
    std::uint64_t node = 0;
    std::uint64_t grantee = 0; // 0: the owner's followers (read only)
    Role role = Role::read;
    std::uint64_t by = 0;
    std::int64_t created = 0;
};

// A public link: read access to `node` and below for whoever holds the token.
struct Link {
    std::uint64_t id = 0;
    std::uint64_t node = 0;
    std::uint64_t owner = 0;
    std::int64_t expires = 0;  // unix seconds; 0: never
    std::string password_hash; // Argon2id; empty: no password
    std::int64_t created = 0;
    std::string digest; // SHA-256 of the token (hex): the token itself is not stored
};

// Who is asking: a signed-in user, or the holder of a public link (user 0).
struct Principal {
    std::uint64_t user = 0;
    std::uint64_t link_root = 0; // the node a public link opens (0: none)
};

// A file to record (commit): the content is already stored and verified by blockd.
struct FileCommit {
    std::uint64_t parent = 0;
    std::string name;
    std::uint64_t size = 0;
    std::string media_type, sha256, manifest;
    std::vector<std::string> tags;
    // blockd's verdict, remembered under verified_key (empty: not remembered).
    std::string verified_key, scan;
};

// blockd's verdict on some content, remembered per (block list, declared type): content is
// immutable, so a file committed again (a copy, a re-upload) needs no second scan.
struct Verified {
    std::uint64_t size = 0;
    std::string sha256, media_type, manifest, scan;
};

struct StoreDb;
class SearchIndex;
class Feeds;
class Outbox;
struct EventSink;
struct FeedOptions;

// Checks a file or folder name; throws StoreError(400, "invalid_name").
void check_name(std::string_view name);
// The key used for uniqueness within a folder (ASCII lowercase).
std::string fold_name(std::string_view name);

struct StoreOptions {
    std::uint32_t node_id = 0;
    std::size_t max_map_bytes = std::size_t{1} << 40;
    std::vector<EventSink> sinks; // where events go (outbox.hh); none: no events are kept
    std::size_t feed_max_entries = 1000;
    // Media types committed as "processing" (a transcode follows), e.g. "video/*".
    std::vector<std::string> process_types;
    // Nice value of the thread that commits every write (lmdb::GroupCommit); 0: unchanged.
    int commit_nice = 0;
};

class MetaStore {
public:
    MetaStore(const std::filesystem::path& dir, std::uint32_t node_id,
              std::size_t max_map_bytes = std::size_t{1} << 40);
    MetaStore(const std::filesystem::path& dir, StoreOptions options);
    ~MetaStore();

    std::uint64_t next_id();
    // `count` ids for callers (POST /v1/ids), the last one recorded durably first, so a
    // restart never hands one out again even if the clock stepped back.
    std::vector<std::uint64_t> reserve_ids(std::size_t count);

    // Users. create_user throws StoreError 409 name_taken / email_taken, 400 for bad input.
    User create_user(std::string name, std::string email, std::string password_hash);
    std::optional<User> user(std::uint64_t id);
    std::optional<User> user_by_login(std::string_view name_or_email);
    std::vector<User> users(std::uint64_t after, std::size_t limit);
    void set_disabled(std::uint64_t id, bool disabled); // 404 unknown_user
    void set_password_hash(std::uint64_t id, const std::string& hash);
    std::size_t user_count();

    Session create_session(std::uint64_t user, std::int64_t ttl_seconds);
    std::optional<Session> session(std::uint64_t id);
    bool revoke_session(std::uint64_t id); // false when unknown

    // API keys. add_api_key stores the record as given (id, digest and all).
    void add_api_key(const ApiKeyRecord& key);
    std::optional<ApiKeyRecord> api_key(std::uint64_t id);
    std::vector<ApiKeyRecord> api_keys_of(std::uint64_t user);
    bool revoke_api_key(std::uint64_t user, std::uint64_t id); // false: unknown or not theirs

    // Tree. All throw StoreError: 404 not_found (unknown or not visible to the caller),
    // 403 forbidden (visible, but read only), 400 invalid_name / not_a_folder /
    // invalid_move / cross_owner, 409 name_taken, 412 version_mismatch (If-Match).
    // Writers (owner, or a write share on the parent) create nodes owned by the tree's owner.
    Node create_folder(std::uint64_t caller, std::uint64_t parent, std::string name);
    Node commit_file(std::uint64_t caller, const FileCommit& file);
    // The node and the caller's role on it; trashed nodes only for their owner.
    Node stat(Principal who, std::uint64_t id, Role* role = nullptr);
    Node stat(std::uint64_t caller, std::uint64_t id) { return stat(Principal{caller}, id); }
    Node stat_path(std::uint64_t caller, std::string_view path);
    struct Page {
        std::vector<Node> nodes;
        std::string next_cursor; // empty at the end
    };
    Page list(Principal who, std::uint64_t folder, std::string_view cursor, std::size_t limit);
    // The same page, each node handed to `each` in place (within the read transaction, so
    // the views die when it returns); returns the next cursor ("" at the end).
    std::string list_each(Principal who, std::uint64_t folder, std::string_view cursor,
                          std::size_t limit, const std::function<void(const NodeView&)>& each);
    // The same page as JSON objects (append_node_json's text), mostly copied as stored in
    // the children entries; returns the next cursor.
    std::string list_json(Principal who, std::uint64_t folder, std::string_view cursor,
                          std::size_t limit, const std::function<void(std::string_view)>& each);
    Page list(std::uint64_t caller, std::uint64_t folder, std::string_view cursor,
              std::size_t limit) {
        return list(Principal{caller}, folder, cursor, limit);
    }
    // Renames and/or moves and/or retags; if_match 0 means no check.
    Node update(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name,
                std::optional<std::uint64_t> parent, std::uint64_t if_match,
                std::optional<std::vector<std::string>> tags = std::nullopt);
    // Writes that do not wait: done(node, error) runs on the commit thread once the change is
    // durable (error nullptr) or refused (StoreError, ...; node then means nothing). done must
    // be quick and must not throw. Input errors found before the write throw at once.
    using NodeDone = std::function<void(Node, std::exception_ptr)>;
    void commit_file_async(std::uint64_t caller, FileCommit file, NodeDone done);
    void update_async(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name,
                      std::optional<std::uint64_t> parent, std::uint64_t if_match,
                      std::optional<std::vector<std::string>> tags, NodeDone done);
    // One-shot uploads: a placeholder file in state "uploading" holds the name while the body
    // streams in; finish_upload fills in the content (and emits file.created), abort_upload
    // removes it. Placeholders left by a crash are marked "failed" when the store opens.
    Node begin_upload(std::uint64_t caller, std::uint64_t parent, std::string name);
    Node finish_upload(std::uint64_t caller, std::uint64_t id, const FileCommit& content);
    void abort_upload(std::uint64_t id);

    // Processing results (transcoded): state ready/failed and renditions; emits file.ready.
    // processing: {"percent","stage"} (state processing) or {"error"} (failed), or null.
    Node set_file_state(std::uint64_t id, FileState state, const nlohmann::json& renditions,
                        const nlohmann::json& processing = nullptr);

    // Trash: move there (write access to the node's folder), restore (owner; to the old
    // folder, or the root when that one is gone; a new name when the old one is taken),
    // purge (owner; the node and everything below it, for good).
    Node trash(std::uint64_t caller, std::uint64_t id, std::uint64_t if_match = 0);
    Node restore(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name);
    std::size_t purge(std::uint64_t caller, std::uint64_t id); // nodes removed
    Page list_trash(std::uint64_t caller, std::string_view cursor, std::size_t limit);
    std::size_t empty_trash(std::uint64_t caller);

    // Sharing (owner only). grantee 0 shares with the owner's followers (read only).
    Share share(std::uint64_t caller, std::uint64_t node, std::uint64_t grantee, Role role);
    bool unshare(std::uint64_t caller, std::uint64_t node, std::uint64_t grantee);
    std::vector<Share> shares_of(std::uint64_t caller, std::uint64_t node);
    // Nodes shared with the caller (the share roots), in node id order after `after`.
    std::vector<std::pair<Share, Node>> shared_with(std::uint64_t caller, std::uint64_t after,
                                                    std::size_t limit);

    // Public links (owner only). The token is returned once; only its digest is stored.
    std::pair<Link, std::string> create_link(std::uint64_t caller, std::uint64_t node,
                                             std::int64_t expires, std::string password_hash);
    std::vector<Link> links_of(std::uint64_t caller, std::uint64_t node);
    bool revoke_link(std::uint64_t caller, std::uint64_t node, std::uint64_t link_id);
    // The node, when a public link without password opens it (a "public" feed entry).
    std::optional<Node> public_node(std::uint64_t id);
    // The link a token opens, if it exists and has not expired (password not checked).
    std::optional<Link> link_by_token(std::string_view token);

    // Search over what the caller may see (own tree and shares), best first.
    struct SearchResult {
        Node node;
        double score = 0;
    };
    std::vector<SearchResult> search(std::uint64_t caller, std::string_view query,
                                     std::size_t limit);

    // Follows and feeds (feeds.hh). Following yourself or an unknown user: 400 / 404.
    bool follow(std::uint64_t follower, std::uint64_t followee);
    bool unfollow(std::uint64_t follower, std::uint64_t followee);
    Feeds& feeds() { return *feeds_; }
    Outbox* outbox() { return outbox_.get(); }
    // Starts the threads that fan feed entries out and deliver events.
    void start_workers();

    std::optional<Verified> verified(std::string_view key);

    struct Counts {
        std::size_t users = 0, sessions = 0, nodes = 0;
        std::size_t map_bytes = 0;
    };
    Counts counts();
    // Group commits (each one fsync'ed batch of writes) since the store opened.
    std::uint64_t write_batches() const { return group_->batches(); }
    // Why the commit thread could not take options.commit_nice (an errno), or 0.
    int commit_nice_error() const noexcept;

    lmdb::Env& env() { return *env_; }

private:
    // Every write: one batch of a group commit (one fsync for many concurrent writers).
    // A full map (meta.max_map_bytes reached) is 507, and nothing of the write is kept.
    template <class F>
    auto write(F&& fn) {
        try {
            return group_->run(std::forward<F>(fn));
        } catch (...) {
            std::rethrow_exception(store_error_of(std::current_exception()));
        }
    }
    // write() without waiting: done(error) on the commit thread (errors as write() throws them).
    template <class F>
    void write_async(F fn, std::function<void(std::exception_ptr)> done) {
        group_->submit(std::move(fn), [this, done = std::move(done)](std::exception_ptr e) {
            if (!e) wake_workers();
            done(store_error_of(e));
        });
    }
    static std::exception_ptr store_error_of(std::exception_ptr e);
    Node new_file(std::uint64_t caller, const FileCommit& f); // checks f, gives it an id
    void commit_in(lmdb::Txn& t, std::uint64_t caller, const FileCommit& f, Node& n);
    Node update_in(lmdb::Txn& t, std::uint64_t caller, std::uint64_t id,
                   const std::optional<std::string>& name,
                   const std::optional<std::uint64_t>& parent, std::uint64_t if_match,
                   const std::optional<std::vector<std::string>>& tags);
    void reindex(lmdb::Txn& t, const Node& n);
    template <class Entry>
    std::string walk_children(lmdb::Txn& t, Principal who, std::uint64_t folder,
                              std::string_view cursor, std::size_t limit, Entry&& entry);
    void fail_stale_uploads();
    // The feed entry for a file that followers or a public link can see (if any).
    void publish_if_visible(lmdb::Txn& t, const Node& n, bool followers, bool public_link);
    std::function<bool(std::uint64_t, std::uint64_t)> follows_in(lmdb::Txn& t);
    void wake_workers();
    // An event for the outbox (a no-op without sinks), in the caller's write transaction.
    void emit(lmdb::Txn& t, const char* type, const Node& n, std::uint64_t user,
              nlohmann::json data = nlohmann::json::object());

    std::unique_ptr<lmdb::Env> env_;
    std::unique_ptr<StoreDb> db_;
    std::unique_ptr<ids::Generator> ids_;
    StoreOptions options_;
    std::unique_ptr<SearchIndex> search_;
    std::unique_ptr<Feeds> feeds_;
    std::unique_ptr<Outbox> outbox_;
    std::unique_ptr<lmdb::GroupCommit> group_;
    struct Workers;
    std::unique_ptr<Workers> workers_;
};

const char* to_string(NodeKind k);
const char* to_string(FileState s);
const char* to_string(Role r);
std::optional<FileState> file_state_of(std::string_view s);
std::optional<Role> role_of(std::string_view s); // "read" | "write"

} // namespace strata::metad

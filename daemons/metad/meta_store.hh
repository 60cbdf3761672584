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
//   children     parent id ++ folded name -> child id   (unique names per folder, listing
//                in name order, cursors)
//   api_keys     id -> JSON {id, user, name, scopes, digest, created, revoked}
//   user_keys    user id ++ key id -> ""    (a user's keys, for listing)
//   meta         "last_id" -> the last snowflake id issued (ids stay unique over restarts)
//
// Names: 1..255 bytes of UTF-8, no '/', no control characters, not "." or "..". Unique in a
// folder ignoring ASCII case, so a tree syncs to case-insensitive file systems.
#pragma once

#include "ids/ids.hh"
#include "lmdb/dbi.hh"
#include "lmdb/env.hh"

#include <cstdint>
#include <filesystem>
#include <memory>
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

struct Node {
    std::uint64_t id = 0;
    std::uint64_t owner = 0;
    std::uint64_t parent = 0; // 0 for a root folder
    std::string name;         // "" for a root folder
    NodeKind kind = NodeKind::folder;
    std::uint64_t version = 1; // bumped by every change (If-Match)
    std::int64_t created = 0;  // unix milliseconds
    std::int64_t modified = 0;
};

// Checks a file or folder name; throws StoreError(400, "invalid_name").
void check_name(std::string_view name);
// The key used for uniqueness within a folder (ASCII lowercase).
std::string fold_name(std::string_view name);

class MetaStore {
public:
    MetaStore(const std::filesystem::path& dir, std::uint32_t node_id,
              std::size_t max_map_bytes = std::size_t{1} << 40);

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

    // Tree. All throw StoreError: 404 not_found (unknown or not the caller's: a caller never
    // learns that a node it may not see exists), 400 invalid_name / not_a_folder /
    // invalid_move, 409 name_taken, 412 version_mismatch (If-Match).
    Node create_folder(std::uint64_t caller, std::uint64_t parent, std::string name);
    Node stat(std::uint64_t caller, std::uint64_t id);
    Node stat_path(std::uint64_t caller, std::string_view path);
    struct Page {
        std::vector<Node> nodes;
        std::string next_cursor; // empty at the end
    };
    Page list(std::uint64_t caller, std::uint64_t folder, std::string_view cursor,
              std::size_t limit);
    // Renames and/or moves; if_match 0 means no check.
    Node update(std::uint64_t caller, std::uint64_t id, std::optional<std::string> name,
                std::optional<std::uint64_t> parent, std::uint64_t if_match);

    struct Counts {
        std::size_t users = 0, sessions = 0, nodes = 0;
        std::size_t map_bytes = 0;
    };
    Counts counts();

    lmdb::Env& env() { return *env_; }

private:
    std::unique_ptr<lmdb::Env> env_;
    lmdb::Dbi users_, user_names_, user_emails_, sessions_, nodes_, children_, meta_;
    lmdb::Dbi api_keys_, user_keys_;
    std::unique_ptr<ids::Generator> ids_;
};

const char* to_string(NodeKind k);

} // namespace strata::metad

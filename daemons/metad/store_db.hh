// Internals shared by MetaStore's source files: the database handles, how nodes are stored,
// and how a caller's access to a node is decided.
#pragma once

#include "feeds.hh"
#include "lmdb/dbi.hh"
#include "lmdb/txn.hh"
#include "meta_store.hh"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace strata::metad {

struct StoreDb {
    lmdb::Dbi users, user_names, user_emails, sessions, nodes, children, meta;
    lmdb::Dbi api_keys, user_keys;
    lmdb::Dbi shares, shares_in, links, node_links, trash, verified, uploads;
};

// The threads beside the store: feed fan-out (the outbox has its own).
struct MetaStore::Workers {
    explicit Workers(Feeds& feeds) : feed_worker(feeds) {}
    FeedWorker feed_worker;
};

// How nodes are stored (node_codec.cc): a compact binary record; records of earlier
// releases are JSON objects.
std::string encode_node(const Node& n);
Node decode_node(std::string_view v);
// Reads a binary record in place; false for a JSON one (decode_node reads those). Throws
// std::runtime_error for a damaged record, like decode_node.
bool view_node(std::string_view record, NodeView& out);
// The node a view shows (copies its strings, parses its renditions).
Node node_of(const NodeView& v);
// A node's fields as a view (encoding its tags into tags_buf, dumping its renditions into
// renditions_buf, which must outlive the view).
NodeView view_of(const Node& n, std::string& tags_buf, std::string& renditions_buf);
// Calls each(tag) for every tag of a view.
void for_each_tag(const NodeView& v, const std::function<void(std::string_view)>& each);

std::optional<Node> load_node(lmdb::Txn& t, const StoreDb& db, std::uint64_t id);
// Writes the record, and the node's children entry unless it is a root or in the trash (the
// caller has inserted that key, or dropped it when trashing).
void store_node(lmdb::Txn& t, const StoreDb& db, const Node& n);

// A children value: the child's big-endian id, then kChildJsonV1 and the node as listings
// write it (append_node_json), so a listing is one cursor walk with no record lookups and
// no JSON writing. Values of earlier releases are the id alone. The JSON depends on the
// record only (trashed nodes have no entry); a change to append_node_json's output needs
// a new version byte, so that older entries are rendered from their records again.
constexpr char kChildJsonV1 = 1;
std::string child_value(const Node& n);
// The listing JSON of a children value; nullopt for an id-only (or older) value.
std::optional<std::string_view> child_json(std::string_view value);

// Whether a media type matches one of "type/subtype", "type/*" or "*/*".
bool media_type_matches(const std::vector<std::string>& patterns, std::string_view type);

// A user's root folder, read in t.
std::optional<std::uint64_t> user_root(lmdb::Txn& t, const StoreDb& db, std::uint64_t user);

std::string child_key(std::uint64_t parent, std::string_view name);

// Records `id` as the last id issued unless a later one is recorded (ids stay unique over
// restarts even when the clock steps back).
void record_last_id(lmdb::Txn& t, const StoreDb& db, std::uint64_t id);

// A node and what the principal may do with it.
struct Access {
    Node node;
    Role role = Role::none;
    bool in_trash = false;    // the node or one of its folders is in the trash
    bool followers = false;   // shared with the owner's followers (itself or a folder)
    bool public_link = false; // a public link without password opens it (or a folder)
};

// Walks from the node up to its root: the owner, shares and links on the way decide the
// role. `follows(a, b)`: whether user a follows user b. nullopt: unknown id.
// publicity: also find out whether a public link without password opens it (costs a
// prefix scan per folder, so only commits ask, to decide on feed entries).
std::optional<Access> resolve(lmdb::Txn& t, const StoreDb& db, Principal who, std::uint64_t id,
                              const std::function<bool(std::uint64_t, std::uint64_t)>& follows,
                              bool publicity = false);

// The folder a writer adds to: 404 unknown / not visible / in the trash, 400 not a folder,
// 403 read only (tree.cc).
Access writable_folder(lmdb::Txn& t, const StoreDb& db, std::uint64_t caller, std::uint64_t parent,
                       const std::function<bool(std::uint64_t, std::uint64_t)>& follows,
                       bool publicity);

StoreError not_found();
StoreError forbidden(const std::string& why);

} // namespace strata::metad

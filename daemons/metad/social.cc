// Search over what a caller may see, follows, and the background workers (feed fan-out,
// event delivery) that run beside the store.
#include "feeds.hh"
#include "keys.hh"
#include "lmdb/cursor.hh"
#include "outbox.hh"
#include "search_index.hh"
#include "store_db.hh"

#include <algorithm>
#include <set>

namespace strata::metad {

namespace {
constexpr std::size_t kMaxFollowedSearched = 256;
}

MetaStore::~MetaStore() {
    workers_.reset(); // threads first: they use the store's queues
    if (outbox_) outbox_->stop();
    group_.reset(); // finishes queued writes
}

void MetaStore::start_workers() {
    if (!workers_) workers_ = std::make_unique<Workers>(*feeds_);
    if (outbox_) outbox_->start();
}

void MetaStore::wake_workers() {
    if (workers_) workers_->feed_worker.wake();
    if (outbox_) outbox_->wake();
}

std::vector<MetaStore::SearchResult> MetaStore::search(std::uint64_t caller, std::string_view query,
                                                       std::size_t limit) {
    return env_->read([&](lmdb::Txn& t) {
        auto follows = follows_in(t);
        // Whose indexes to look in: the caller's own, and the owners of what is shared with
        // the caller (each hit is then checked with the access walk).
        std::set<std::uint64_t> owners{caller};
        {
            lmdb::Cursor c(t, db_->shares_in);
            for (auto [k, v] : c.prefix(be64(caller)))
                owners.insert(from_be64(v));
        }
        // And of the users the caller follows (what they share with followers): the first
        // kMaxFollowedSearched of them, so a query stays bounded.
        for (const auto& f : feeds_->following(t, caller, 0, kMaxFollowedSearched))
            owners.insert(f.user);
        std::vector<SearchResult> out;
        std::int64_t now = now_ms();
        for (std::uint64_t owner : owners) {
            auto allowed = [&](std::uint64_t id) {
                auto a = resolve(t, *db_, Principal{caller}, id, follows);
                return a && a->role != Role::none && !a->in_trash;
            };
            for (const auto& hit : search_->query(t, owner, query, limit, allowed, now))
                if (auto n = load_node(t, *db_, hit.id)) out.push_back({std::move(*n), hit.score});
        }
        std::sort(out.begin(), out.end(), [](const SearchResult& a, const SearchResult& b) {
            if (a.score != b.score) return a.score > b.score;
            return a.node.modified > b.node.modified;
        });
        if (out.size() > limit) out.resize(limit);
        return out;
    });
}

bool MetaStore::follow(std::uint64_t follower, std::uint64_t followee) {
    if (follower == followee) throw StoreError(400, "bad_request", "you cannot follow yourself");
    auto u = user(followee);
    if (!u || u->disabled) throw StoreError(404, "unknown_user", "no such user");
    return write([&](lmdb::Txn& t) { return feeds_->follow(t, follower, followee, now_ms()); });
}

bool MetaStore::unfollow(std::uint64_t follower, std::uint64_t followee) {
    return write([&](lmdb::Txn& t) { return feeds_->unfollow(t, follower, followee); });
}

} // namespace strata::metad

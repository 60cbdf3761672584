// Follows and per-user feeds, fanned out on write: publish() only enqueues a job in the
// caller's transaction (so the feed item is durable exactly when the file record is), and
// run_once() later copies the item into every follower's feed, a batch of followers per
// write transaction so one popular author never holds the write lock for long.
//
// Databases (ids big-endian u64, so byte order is id order):
//   follows        follower ++ followee -> since      (whom a user follows)
//   followers      followee ++ follower -> since      (who follows a user)
//   follow_counts  user ++ 'i' | 'e' -> u64           (following / followers counts)
//   feed_entries   user ++ item id -> JSON FeedItem  (newest = last key of the user)
//   feed_counts    user -> u64                        (entries, so trimming is O(dropped))
// plus the queue "fanout" (queue.fanout.*). A job rerun after a crash finds the entry keys
// it already wrote and skips them, so nothing lands twice. Authors' own publications do not
// enter their own feed; whether a reader may still see an entry is checked when reading
// (remove_entry drops the ones that turned out hidden).
#pragma once

#include "lmdb/env.hh"
#include "queue/queue.hh"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace strata::metad {

struct FeedOptions {
    std::size_t max_entries = 1000; // per feed; the oldest are trimmed
    std::size_t batch = 500;        // followers per write transaction
};

struct FeedItem {
    std::uint64_t id = 0; // snowflake, unique per publication, time-ordered
    std::uint64_t author = 0;
    std::uint64_t node = 0;
    std::string kind; // "public" | "followers": both reach followers; readers filter
    std::string name;
    std::string media_type;
    std::int64_t created = 0;
};

struct FeedPage {
    std::vector<FeedItem> items; // newest first
    std::uint64_t next = 0;      // before_id of the next page; 0 at the end
};

struct Follow {
    std::uint64_t user = 0;
    std::int64_t since = 0; // unix ms
};

struct FollowCounts {
    std::uint64_t following = 0;
    std::uint64_t followers = 0;
};

// The fan-out job payload (public for tests and tools that inspect the queue).
std::string encode_item(const FeedItem& item);
FeedItem decode_item(std::string_view payload); // throws nlohmann::json::exception

class Feeds {
public:
    // Opens the databases and the "fanout" queue; env must outlive this object.
    Feeds(lmdb::Env& env, FeedOptions opts = {});

    // All of these act in txn (a write transaction for the mutating ones).
    bool follow(lmdb::Txn& txn, std::uint64_t follower, std::uint64_t followee,
                std::int64_t now_ms); // false if already following
    bool unfollow(lmdb::Txn& txn, std::uint64_t follower, std::uint64_t followee);
    // In user id order, starting after after_id.
    std::vector<Follow> following(lmdb::Txn& txn, std::uint64_t user, std::uint64_t after_id,
                                  std::size_t limit);
    std::vector<Follow> followers(lmdb::Txn& txn, std::uint64_t user, std::uint64_t after_id,
                                  std::size_t limit);
    FollowCounts counts(lmdb::Txn& txn, std::uint64_t user);

    // Enqueues the fan-out job (idempotency key "feed:" + id) in txn and nothing else.
    // Throws std::invalid_argument for id 0 or an unknown kind.
    void publish(lmdb::Txn& txn, const FeedItem& item);
    // Processes one job; false if none was ready. A failing job is nacked (retried later).
    bool run_once();

    // Newest first, entries older than before_id (0: from the newest).
    FeedPage feed(lmdb::Txn& txn, std::uint64_t user, std::uint64_t before_id, std::size_t limit);
    std::size_t feed_size(lmdb::Txn& txn, std::uint64_t user);
    bool remove_entry(lmdb::Txn& txn, std::uint64_t user, std::uint64_t item_id);

    queue::Queue& queue() noexcept { return fanout_; }

private:
    bool deliver(queue::Lease& lease);
    // Writes the item to up to opts_.batch followers after `after`; returns the last one
    // written, 0 when no follower was left.
    std::uint64_t fan_out_batch(lmdb::Txn& txn, const FeedItem& item, std::uint64_t after,
                                const std::string& value);
    void trim(lmdb::Txn& txn, std::uint64_t user, std::uint64_t count);
    void add_count(lmdb::Txn& txn, lmdb::Dbi dbi, std::string_view key, std::int64_t delta);

    lmdb::Env& env_;
    FeedOptions opts_;
    lmdb::Dbi follows_, followers_, follow_counts_, entries_, feed_counts_;
    queue::Queue fanout_;
};

// One thread draining the fan-out queue: runs jobs until none is ready, then sleeps until
// wake() or for 1 s (jobs retried after a backoff become ready without a wake).
class FeedWorker {
public:
    explicit FeedWorker(Feeds& feeds);
    ~FeedWorker(); // stops and joins
    FeedWorker(const FeedWorker&) = delete;
    FeedWorker& operator=(const FeedWorker&) = delete;

    void wake();

private:
    void loop();

    Feeds& feeds_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool woken_ = false;
    bool stop_ = false;
    std::thread thread_; // last: starts after the members it uses exist
};

} // namespace strata::metad

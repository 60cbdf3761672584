#include "feeds.hh"

#include "keys.hh"
#include "lmdb/cursor.hh"
#include "log/log.hh"

#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

namespace strata::metad {

namespace {

using lmdb::Cursor;
using lmdb::Txn;
using nlohmann::json;

queue::Options fanout_options() {
    queue::Options o;
    o.max_attempts = 0; // a feed job is never given up: followers would silently miss it
    o.jitter = 0.2;
    return o;
}

std::string pair_key(std::uint64_t a, std::uint64_t b) {
    return be64(a) + be64(b);
}

std::optional<std::uint64_t> read_u64(const Txn& txn, lmdb::Dbi dbi, std::string_view key) {
    auto v = txn.get(dbi, key);
    if (!v) return std::nullopt;
    return from_be64(*v);
}

std::vector<Follow> list_pairs(Txn& txn, lmdb::Dbi dbi, std::uint64_t user, std::uint64_t after,
                               std::size_t limit) {
    std::vector<Follow> out;
    const std::string pfx = be64(user);
    const std::string start = pair_key(user, after);
    Cursor c(txn, dbi);
    auto e = c.seek(start);
    if (e && e->first == start) e = c.next(); // after_id itself is exclusive
    for (; e && out.size() < limit && e->first.starts_with(pfx); e = c.next()) {
        out.push_back(
            {from_be64(e->first.substr(8)), static_cast<std::int64_t>(from_be64(e->second))});
    }
    return out;
}

} // namespace

std::string encode_item(const FeedItem& i) {
    return json{{"id", i.id},          {"author", i.author}, {"node", i.node},
                {"kind", i.kind},      {"name", i.name},     {"media_type", i.media_type},
                {"created", i.created}}
        .dump();
}

FeedItem decode_item(std::string_view payload) {
    json j = json::parse(payload);
    return {j.at("id"),   j.at("author"),     j.at("node"),   j.at("kind"),
            j.at("name"), j.at("media_type"), j.at("created")};
}

Feeds::Feeds(lmdb::Env& env, FeedOptions opts)
    : env_(env), opts_(opts), fanout_(env, "fanout", fanout_options()) {
    if (opts_.max_entries == 0 || opts_.batch == 0)
        throw std::invalid_argument("feeds: max_entries and batch must be positive");
    env_.write([&](Txn& t) {
        follows_ = t.open_dbi("follows", MDB_CREATE);
        followers_ = t.open_dbi("followers", MDB_CREATE);
        follow_counts_ = t.open_dbi("follow_counts", MDB_CREATE);
        entries_ = t.open_dbi("feed_entries", MDB_CREATE);
        feed_counts_ = t.open_dbi("feed_counts", MDB_CREATE);
    });
}

void Feeds::add_count(Txn& txn, lmdb::Dbi dbi, std::string_view key, std::int64_t delta) {
    const auto n = static_cast<std::int64_t>(read_u64(txn, dbi, key).value_or(0)) + delta;
    if (n <= 0)
        txn.del(dbi, key); // absent means 0: no record per idle user
    else
        txn.put(dbi, key, be64(static_cast<std::uint64_t>(n)));
}

bool Feeds::follow(Txn& txn, std::uint64_t follower, std::uint64_t followee, std::int64_t now) {
    const std::string since = be64(static_cast<std::uint64_t>(now));
    if (!txn.insert(follows_, pair_key(follower, followee), since)) return false;
    txn.put(followers_, pair_key(followee, follower), since);
    add_count(txn, follow_counts_, be64(follower) + "i", 1);
    add_count(txn, follow_counts_, be64(followee) + "e", 1);
    return true;
}

bool Feeds::unfollow(Txn& txn, std::uint64_t follower, std::uint64_t followee) {
    if (!txn.del(follows_, pair_key(follower, followee))) return false;
    txn.del(followers_, pair_key(followee, follower));
    add_count(txn, follow_counts_, be64(follower) + "i", -1);
    add_count(txn, follow_counts_, be64(followee) + "e", -1);
    return true;
}

std::vector<Follow> Feeds::following(Txn& txn, std::uint64_t user, std::uint64_t after_id,
                                     std::size_t limit) {
    return list_pairs(txn, follows_, user, after_id, limit);
}

std::vector<Follow> Feeds::followers(Txn& txn, std::uint64_t user, std::uint64_t after_id,
                                     std::size_t limit) {
    return list_pairs(txn, followers_, user, after_id, limit);
}

FollowCounts Feeds::counts(Txn& txn, std::uint64_t user) {
    return {read_u64(txn, follow_counts_, be64(user) + "i").value_or(0),
            read_u64(txn, follow_counts_, be64(user) + "e").value_or(0)};
}

void Feeds::publish(Txn& txn, const FeedItem& item) {
    if (item.id == 0) throw std::invalid_argument("feeds: item id 0");
    if (item.kind != "public" && item.kind != "followers")
        throw std::invalid_argument("feeds: kind must be public or followers");
    fanout_.enqueue(txn, encode_item(item), "feed:" + std::to_string(item.id));
}

bool Feeds::run_once() {
    auto lease = fanout_.lease();
    if (!lease) return false;
    try {
        if (deliver(*lease) && !fanout_.ack(*lease))
            log::warning("feeds: job {} was leased again before its ack", lease->id);
    } catch (const std::exception& e) {
        log::warning("feeds: fan-out job {} failed (attempt {}): {}", lease->id, lease->attempt,
                     e.what());
        (void)fanout_.nack(*lease, e.what());
    }
    return true;
}

bool Feeds::deliver(queue::Lease& lease) {
    const FeedItem item = decode_item(lease.payload);
    const std::string value = encode_item(item); // canonical form, whatever the payload had
    std::uint64_t after = 0;
    for (;;) {
        auto last = env_.write([&](Txn& t) { return fan_out_batch(t, item, after, value); });
        if (last == 0) return true;
        after = last;
        // A long fan-out keeps its lease; false: it expired and someone else has the job.
        if (!fanout_.extend(lease)) return false;
    }
}

std::uint64_t Feeds::fan_out_batch(Txn& txn, const FeedItem& item, std::uint64_t after,
                                   const std::string& value) {
    std::uint64_t last = 0;
    for (const Follow& f : list_pairs(txn, followers_, item.author, after, opts_.batch)) {
        last = f.user;
        // Already there (a rerun after a crash): neither a second copy nor a second count.
        if (!txn.insert(entries_, pair_key(f.user, item.id), value)) continue;
        const std::uint64_t n = read_u64(txn, feed_counts_, be64(f.user)).value_or(0) + 1;
        txn.put(feed_counts_, be64(f.user), be64(n));
        if (n > opts_.max_entries) trim(txn, f.user, n);
    }
    return last;
}

void Feeds::trim(Txn& txn, std::uint64_t user, std::uint64_t count) {
    const std::string pfx = be64(user);
    std::uint64_t dropped = 0;
    Cursor c(txn, entries_);
    // The oldest entries are the first keys of the user.
    for (auto e = c.seek(pfx);
         e && e->first.starts_with(pfx) && count - dropped > opts_.max_entries; e = c.next()) {
        c.del();
        ++dropped;
    }
    txn.put(feed_counts_, pfx, be64(count - dropped));
}

FeedPage Feeds::feed(Txn& txn, std::uint64_t user, std::uint64_t before_id, std::size_t limit) {
    FeedPage page;
    const std::string pfx = be64(user);
    Cursor c(txn, entries_);
    // Position on the first key past the range, then walk backwards.
    std::optional<Cursor::Entry> bound;
    if (before_id != 0)
        bound = c.seek(pair_key(user, before_id));
    else if (user != std::numeric_limits<std::uint64_t>::max())
        bound = c.seek(be64(user + 1));
    auto e = bound ? c.prev() : c.last();
    for (; e && e->first.starts_with(pfx) && page.items.size() < limit; e = c.prev())
        page.items.push_back(decode_item(e->second));
    if (e && e->first.starts_with(pfx) && !page.items.empty()) page.next = page.items.back().id;
    return page;
}

std::size_t Feeds::feed_size(Txn& txn, std::uint64_t user) {
    return read_u64(txn, feed_counts_, be64(user)).value_or(0);
}

bool Feeds::remove_entry(Txn& txn, std::uint64_t user, std::uint64_t item_id) {
    if (!txn.del(entries_, pair_key(user, item_id))) return false;
    add_count(txn, feed_counts_, be64(user), -1);
    return true;
}

FeedWorker::FeedWorker(Feeds& feeds) : feeds_(feeds), thread_([this] { loop(); }) {}

FeedWorker::~FeedWorker() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void FeedWorker::wake() {
    {
        std::lock_guard lk(mu_);
        woken_ = true;
    }
    cv_.notify_all();
}

void FeedWorker::loop() {
    std::unique_lock lk(mu_);
    while (!stop_) {
        woken_ = false; // a wake() from now on means new work: look again after this round
        lk.unlock();
        try {
            while (feeds_.run_once()) {
                std::lock_guard g(mu_);
                if (stop_) break;
            }
        } catch (const std::exception& e) {
            log::error("feeds: worker: {}", e.what()); // LMDB trouble: try again later
        }
        lk.lock();
        cv_.wait_for(lk, std::chrono::seconds(1), [&] { return stop_ || woken_; });
    }
}

} // namespace strata::metad

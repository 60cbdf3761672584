#pragma once
// Queue: durable work queue on LMDB (at-least-once delivery).
//
//   enqueue -> pending --lease--> leased --ack--> removed
//                 ^                 |  \--nack / lease expiry--> pending (retry) or dead
//                 '--requeue_dead-- dead --purge_dead--> removed
//   pending, dead --cancel--> removed;  leased --bury--> dead (no retry can help)
//
// - Every call is one LMDB write transaction, committed and synced to disk before the call
//   returns: an enqueue that returned survives kill -9 and power loss. The Env must not use
//   MDB_NOSYNC / MDB_NOMETASYNC / MDB_MAPASYNC (the constructor refuses it).
// - Outbox: enqueue(txn, ...) writes the item inside the caller's write transaction of the
//   queue's Env (a child Txn or a GroupCommit op too), so it commits or aborts atomically
//   with the caller's own records; durable only once that transaction commits. An aborted
//   transaction leaves no item and does not consume the idempotency key.
// - Ids are per-queue counters starting at 1, in enqueue order. Lease tokens come from
//   another counter, so a token is never reused, even across restarts.
// - lease() hands out the pending item with the smallest (visible_at, id): FIFO among
//   visible items. It is O(log n) through a (visible_at, id) index; expired leases are found
//   through a (expires_at, id) index and reaped first (a batch of at most 256 per
//   transaction), so that cost is paid once per expired lease.
// - A lease gives the item attempt N (N = 1, 2, ...). nack after attempt N makes the item
//   visible again after min(backoff_max, backoff_base * 2^(N-1)) (minus jitter, see
//   Options); a lease that expires makes it visible again at once. Either way the attempt
//   counted, and when N == max_attempts the item goes to the dead-letter list instead.
// - ack/nack/extend must present the lease's token. They are rejected (false) once the
//   item was leased again, acked, nacked or reaped after its expiry. An expired lease that
//   nobody has reaped yet is still honoured (the work is done; nobody else holds the item).
// - Idempotency keys (1..255 bytes) are remembered for Options::idempotency_retention after
//   the enqueue that used them, even after the item is acked or purged: enqueueing again
//   with the key in that period returns the original id and adds nothing. Expired keys are
//   forgotten lazily (a few per enqueue).
// - One Env may hold several queues: each uses 7 named databases "queue.NAME.*" (size
//   EnvOptions::max_dbs accordingly; the directory constructor allows 64).
// - Thread-safe: all state lives in LMDB, whose write transactions are serialised.
//   Times are unix milliseconds from Options::clock.

#include "lmdb/env.hh"
#include "queue/types.hh"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::queue {

namespace detail {
struct Record;
}

class Queue {
public:
    // Queue `name` ([A-Za-z0-9_-]{1,64}) in an open Env, which must outlive the Queue.
    Queue(lmdb::Env& env, std::string_view name, Options opts = {});
    // Queue `name` in its own Env in directory dir (created if missing).
    Queue(const std::filesystem::path& dir, std::string_view name, Options opts = {});
    ~Queue();
    Queue(const Queue&) = delete;
    Queue& operator=(const Queue&) = delete;

    const std::string& name() const noexcept { return name_; }
    const Options& options() const noexcept { return opts_; }
    lmdb::Env& env() const noexcept { return *env_; }

    // Adds an item, visible after `delay`. With a non-empty idempotency key already used
    // within the retention period, returns that enqueue's id and adds nothing.
    std::uint64_t enqueue(std::string_view payload, std::string_view idempotency_key = {},
                          std::chrono::milliseconds delay = {});
    // The same inside txn, an active write transaction of env() (else std::invalid_argument).
    // Nothing is visible or durable before txn (and its parents) commit.
    std::uint64_t enqueue(lmdb::Txn& txn, std::string_view payload,
                          std::string_view idempotency_key = {},
                          std::chrono::milliseconds delay = {});

    // Leases the first visible item for visibility_timeout; nullopt if none is visible (found
    // in a read transaction: polling an idle queue writes nothing).
    std::optional<Lease> lease();
    // Done: removes the item. False if the lease is stale.
    [[nodiscard]] bool ack(const Lease& lease);
    // Failed: schedules a retry with backoff, or dead-letters the item after max_attempts.
    // False if the lease is stale.
    [[nodiscard]] bool nack(const Lease& lease, std::string_view reason);
    // Failed in a way no retry can mend (a corrupt input): dead-lettered at once, with the
    // reason. False if the lease is stale.
    [[nodiscard]] bool bury(const Lease& lease, std::string_view reason);
    // Still working: the lease now expires visibility_timeout from now (updates
    // lease.expires_at). False if the lease is stale.
    [[nodiscard]] bool extend(Lease& lease);
    // Returns expired leases to pending (or dead); lease() does this too. Returns how many.
    std::size_t reap();

    // Retry delay after failed attempt `attempt` of item `id` (backoff and jitter).
    std::chrono::milliseconds retry_delay(std::uint64_t id, std::uint32_t attempt) const;

    std::optional<ItemInfo> find(std::uint64_t id) const;
    Counts counts() const; // O(log n + number of delayed items)

    // Dead-letter list, in id order, starting after after_id.
    std::vector<ItemInfo> list_dead(std::uint64_t after_id = 0, std::size_t limit = 100) const;
    // Moves a dead item (or all of them) back to pending, visible now, attempts reset to 0.
    bool requeue_dead(std::uint64_t id);
    std::size_t requeue_dead();
    // Deletes a pending or dead item for good (a cancelled job). False if there is no such
    // item or it is leased: only its lease holder can end it (ack).
    bool cancel(std::uint64_t id);
    // Deletes a dead item (or all of them) for good.
    bool purge_dead(std::uint64_t id);
    std::size_t purge_dead();

private:
    void init();
    bool has_work(std::int64_t now) const;
    std::int64_t now_ms() const;
    bool exhausted(std::uint32_t attempts) const noexcept;
    std::optional<detail::Record> load(lmdb::Txn& t, std::uint64_t id) const;
    void store(lmdb::Txn& t, std::uint64_t id, const detail::Record& r) const;
    std::uint64_t bump(lmdb::Txn& t, std::string_view counter) const;
    std::optional<detail::Record> held(lmdb::Txn& t, const Lease& lease) const;
    void make_pending(lmdb::Txn& t, std::uint64_t id, detail::Record& r, std::int64_t at) const;
    void make_dead(lmdb::Txn& t, std::uint64_t id, detail::Record& r, std::int64_t now,
                   std::string_view reason) const;
    void remove(lmdb::Txn& t, std::uint64_t id) const;
    std::size_t reap_expired(lmdb::Txn& t, std::int64_t now, std::size_t limit) const;
    std::optional<Lease> lease_first(lmdb::Txn& t, std::int64_t now) const;
    void forget_expired_keys(lmdb::Txn& t, std::int64_t now, std::size_t limit) const;
    ItemInfo info(lmdb::Txn& t, std::uint64_t id, const detail::Record& r) const;

    std::unique_ptr<lmdb::Env> owned_; // only with the directory constructor
    lmdb::Env* env_;
    std::string name_;
    Options opts_;
    lmdb::Dbi items_;    // id -> Record
    lmdb::Dbi payloads_; // id -> payload (apart: state changes do not rewrite it)
    lmdb::Dbi pending_;  // (visible_at, id) -> ""
    lmdb::Dbi leased_;   // (expires_at, id) -> ""
    lmdb::Dbi dead_;     // id -> ""
    lmdb::Dbi idem_;     // "k"+key -> (id, created); "e"+created+key -> "" (expiry order)
    lmdb::Dbi meta_;     // "next_id", "next_token" -> u64
};

} // namespace strata::queue

// Garbage collection of strata-blockd: a mark-and-sweep driven from outside (metad, which
// knows which files exist), over the two content-addressed stores of the daemon: data blocks
// (STATE) and manifests (STATE/manifests).
//
// One cycle:
//   POST /v1/gc/start                       -> 200 {"epoch": N, "started_at": T, ...}
//        409 gc_running when a cycle is already open.
//   POST /v1/gc/mark {"manifests": [id...], "epoch": N?}
//        -> 200 {"epoch", "marked" (this call), "total_marked", "unknown": [...],
//                "damaged": [...]}
//        Marks manifests live for the cycle; the blocks they list are live. At most
//        max_mark_ids ids per call (413 too_many_ids); any id that is not 64 lowercase hex
//        digits -> 400 invalid_id and nothing of that call is marked. Ids with no stored
//        manifest are reported in "unknown"; stored manifests that do not decode are marked
//        (kept) but reported in "damaged" (their blocks cannot be known).
//        409 gc_not_running without an open cycle (or while it sweeps), 409 epoch_mismatch
//        when "epoch" is given and is not the current one.
//   POST /v1/gc/sweep {"dry_run": bool, "epoch": N?}
//        -> 200 {"epoch", "dry_run", "manifests_removed", "blocks_removed", "bytes_freed",
//                "manifests_kept_grace", "blocks_kept_grace", "manifests_kept_marked",
//                "blocks_kept_live", "manifests": [...], "blocks": [...], "truncated"}
//        Removes every manifest not marked and every block not listed by a live manifest,
//        except anything whose mtime is newer than (started_at - grace). A live manifest is
//        a marked one or one kept by the grace period (so a kept manifest never points to
//        removed blocks). With dry_run nothing is removed and the counts say what would be;
//        the lists name the removed (or would-be-removed) ids, at most max_listed of each
//        ("truncated": true when cut). A sweep (dry or not) ends the cycle.
//   POST /v1/gc/abort                       -> 200 {"aborted": bool, "epoch"}
//        Drops an open cycle (metad died mid-cycle); nothing is removed. 409 while sweeping.
//   GET  /v1/gc                             -> 200 {"running", "sweeping", "epoch",
//                "started_at", "marked", "live_blocks", "grace_seconds", "last_sweep"}
//
// Why the grace period: a block is written (and a manifest committed by blockd) before metad
// records the file that uses it, so for a while fresh content is referenced by nobody metad
// knows of. Anything younger than started_at - grace is never removed; blocks and manifests
// written during the cycle are younger than started_at and so always kept.
//
// State: the mark set is kept in memory only. A blockd restart aborts the cycle (the next
// mark/sweep gets 409 gc_not_running, or epoch_mismatch once a new cycle is open); metad then
// starts a new cycle and marks again. Marking is cheap (reads manifests) and a lost cycle
// removes nothing, so durability would buy little. Epochs increase within a process and
// are seeded from the wall clock (max(previous + 1, unix seconds)), so an epoch of a cycle
// lost to a restart is not handed out again. Memory: ~80 bytes per distinct live block.
//
// Concurrency: all calls are thread-safe. The sweep walks both trees without holding the
// lock (marks are refused while it runs) and re-checks each victim's mtime just before
// unlinking it.
//
// Dedupe: a block that already exists is not rewritten by a new upload, but BlockStore
// refreshes its mtime on such a hit (put / commit returning existed=true), so an upload in
// flight that reuses an old unreferenced block is inside the grace period too. Once the
// upload's manifest is written, the manifest's grace period protects its blocks.
#pragma once

#include "block_store.hh"
#include "http/router.hh"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace strata::blockd {

class GcError : public std::runtime_error {
public:
    enum class Kind { running, not_running, sweeping, epoch_mismatch };
    GcError(Kind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
    Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

struct GcStart {
    std::uint64_t epoch = 0;
    std::chrono::system_clock::time_point started_at;
};

struct GcMarkResult {
    std::size_t marked = 0;       // newly marked by this call
    std::size_t total_marked = 0; // marked manifests in the cycle
    std::vector<std::string> unknown;
    std::vector<std::string> damaged;
};

struct GcSweepResult {
    std::uint64_t epoch = 0;
    bool dry_run = false;
    std::uint64_t manifests_removed = 0; // or that would be, for a dry run
    std::uint64_t blocks_removed = 0;
    std::uint64_t bytes_freed = 0; // manifests and blocks
    std::uint64_t manifests_kept_marked = 0;
    std::uint64_t manifests_kept_grace = 0; // unmarked but younger than the cutoff
    std::uint64_t blocks_kept_live = 0;
    std::uint64_t blocks_kept_grace = 0;
    std::vector<std::string> manifests; // removed ids, at most max_listed
    std::vector<std::string> blocks;    // removed hashes, at most max_listed
    bool truncated = false;
};

struct GcStatus {
    bool running = false;
    bool sweeping = false;
    std::uint64_t epoch = 0; // of the open (or last) cycle, 0 before the first
    std::optional<std::chrono::system_clock::time_point> started_at;
    std::size_t marked = 0;
    std::size_t live_blocks = 0;
    std::chrono::seconds grace{0};
    std::optional<GcSweepResult> last_sweep;
};

class GarbageCollector {
public:
    using Clock = std::function<std::chrono::system_clock::time_point()>;

    static constexpr std::size_t max_mark_ids = 10000; // ids per mark call
    static constexpr std::size_t max_listed = 1000;    // ids listed per kind in a sweep
    static constexpr std::chrono::seconds default_grace{24 * 3600};

    GarbageCollector(
        BlockStore& blocks, BlockStore& manifests, std::chrono::seconds grace = default_grace,
        Clock clock = [] { return std::chrono::system_clock::now(); });

    // Throws GcError(running).
    GcStart start();
    // ids must all be valid hashes (throws BlockError(invalid_hash) otherwise, nothing
    // marked). Throws GcError(not_running / sweeping / epoch_mismatch).
    GcMarkResult mark(const std::vector<std::string>& ids,
                      std::optional<std::uint64_t> epoch = std::nullopt);
    // Ends the cycle. Throws GcError(not_running / sweeping / epoch_mismatch).
    GcSweepResult sweep(bool dry_run, std::optional<std::uint64_t> epoch = std::nullopt);
    // Drops an open cycle; false when none was open. Throws GcError(sweeping).
    bool abort();
    GcStatus status() const;

    std::chrono::seconds grace() const noexcept { return grace_; }

    // Called (from the sweeping thread) for every manifest or block a sweep removed, so
    // caches of them can drop theirs. Set before the first sweep.
    void on_remove(std::function<void(std::string_view hash)> fn) { on_remove_ = std::move(fn); }

private:
    using Key = std::array<unsigned char, 32>;
    struct KeyHash {
        std::size_t operator()(const Key& k) const noexcept;
    };
    using KeySet = std::unordered_set<Key, KeyHash>;
    static Key key_of(std::string_view hex);

    void check_open(std::optional<std::uint64_t> epoch) const; // lock held

    BlockStore& blocks_;
    BlockStore& manifests_;
    std::chrono::seconds grace_;
    Clock clock_;

    mutable std::mutex mutex_;
    bool running_ = false;
    bool sweeping_ = false;
    std::uint64_t epoch_ = 0;
    std::chrono::system_clock::time_point started_at_;
    KeySet marked_;      // manifest ids
    KeySet live_blocks_; // blocks listed by marked manifests
    std::optional<GcSweepResult> last_sweep_;
    std::function<void(std::string_view)> on_remove_;
};

// Registers the /v1/gc routes above. gc must outlive the router.
void add_gc_routes(http::Router& router, GarbageCollector& gc);

} // namespace strata::blockd

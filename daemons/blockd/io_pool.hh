// A fixed set of worker threads for blocking disk work (fsync, rename) that must not stall
// the event loop, and the per-upload pipeline that uses it to flush blocks while the next
// ones are still arriving.
#pragma once

#include "block_store.hh"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace strata::blockd {

class IoPool {
public:
    explicit IoPool(unsigned threads);
    ~IoPool(); // finishes queued work, then joins
    IoPool(const IoPool&) = delete;
    IoPool& operator=(const IoPool&) = delete;

    std::future<PutResult> submit(std::packaged_task<PutResult()> task);

private:
    void work();

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::packaged_task<PutResult()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// The SHA-256 of a whole upload, fed from its blocks as workers read them back: block i
// waits for its turn (blocks 0..i-1 hashed), so the order is right whatever thread runs it.
// Without a deadlock: the pool takes tasks in FIFO order, so the block whose turn it is has
// always been taken by a thread already.
class OrderedHash {
public:
    void wait_turn(std::size_t index);
    void update(std::string_view data) { hash_.update(data); }
    // Passes the turn on; `failed` (the block could not be read) poisons the hash.
    void done(std::size_t index, bool failed);
    // After every block is done: the digest, or nullopt if a block failed.
    std::optional<Digest> finish();

private:
    std::mutex mutex_;
    std::condition_variable turn_;
    std::size_t next_ = 0;
    bool failed_ = false;
    Sha256 hash_;
};

// The blocks of one upload being made durable, in order. At most `depth` flushes are in
// flight: past that, add() waits for the oldest (back-pressure when the disk is slower than
// the client). Errors of a flush (disk full) surface from add() or finish(). Destroyed
// early (upload aborted), it waits for the flushes in flight; blocks they installed stay,
// unreferenced, for GC.
class CommitPipeline {
public:
    // whole: if set, each block's bytes also feed it, in order (on the workers).
    CommitPipeline(IoPool& pool, std::size_t depth, OrderedHash* whole = nullptr)
        : pool_(pool), depth_(depth), whole_(whole) {}
    ~CommitPipeline();
    CommitPipeline(const CommitPipeline&) = delete;
    CommitPipeline& operator=(const CommitPipeline&) = delete;

    void add(SealedBlock block);
    // Waits for every flush; the results in the order the blocks were added.
    std::vector<PutResult> finish();

private:
    void collect_oldest();

    IoPool& pool_;
    std::size_t depth_;
    OrderedHash* whole_;
    std::size_t added_ = 0;
    std::deque<std::future<PutResult>> in_flight_;
    std::vector<PutResult> done_;
};

} // namespace strata::blockd

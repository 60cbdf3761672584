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
#include <thread>
#include <vector>

namespace strata::blockd {

class IoPool {
public:
    explicit IoPool(unsigned threads);
    ~IoPool(); // finishes queued work, then joins
    IoPool(const IoPool&) = delete;
    IoPool& operator=(const IoPool&) = delete;

    std::future<PutResult> submit(SealedBlock block);

private:
    void work();

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::packaged_task<PutResult()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// The blocks of one upload being made durable, in order. At most `depth` flushes are in
// flight: past that, add() waits for the oldest (back-pressure when the disk is slower than
// the client). Errors of a flush (disk full) surface from add() or finish(). Destroyed
// early (upload aborted), it waits for the flushes in flight; blocks they installed stay,
// unreferenced, for GC.
class CommitPipeline {
public:
    CommitPipeline(IoPool& pool, std::size_t depth) : pool_(pool), depth_(depth) {}
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
    std::deque<std::future<PutResult>> in_flight_;
    std::vector<PutResult> done_;
};

} // namespace strata::blockd

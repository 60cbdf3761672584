#include "io_pool.hh"

namespace strata::blockd {

IoPool::IoPool(unsigned threads) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i)
        threads_.emplace_back([this] { work(); });
}

IoPool::~IoPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
        t.join();
}

std::future<PutResult> IoPool::submit(SealedBlock block) {
    // packaged_task needs a copyable callable: the block rides in a shared_ptr.
    auto held = std::make_shared<SealedBlock>(std::move(block));
    std::packaged_task<PutResult()> task([held] { return held->install(); });
    auto future = task.get_future();
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(task));
    }
    wake_.notify_one();
    return future;
}

void IoPool::work() {
    for (;;) {
        std::packaged_task<PutResult()> task;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return; // stopping, and nothing left to do
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        task(); // exceptions land in the future
    }
}

CommitPipeline::~CommitPipeline() {
    for (auto& f : in_flight_)
        if (f.valid()) f.wait();
}

void CommitPipeline::add(SealedBlock block) {
    in_flight_.push_back(pool_.submit(std::move(block)));
    while (in_flight_.size() > depth_)
        collect_oldest();
}

void CommitPipeline::collect_oldest() {
    auto f = std::move(in_flight_.front());
    in_flight_.pop_front();
    done_.push_back(f.get()); // rethrows the flush's BlockError
}

std::vector<PutResult> CommitPipeline::finish() {
    while (!in_flight_.empty())
        collect_oldest();
    return std::move(done_);
}

} // namespace strata::blockd

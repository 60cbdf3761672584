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

std::future<PutResult> IoPool::submit(std::packaged_task<PutResult()> task) {
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

void OrderedHash::wait_turn(std::size_t index) {
    std::unique_lock lock(mutex_);
    turn_.wait(lock, [&] { return next_ == index; });
}

void OrderedHash::done(std::size_t index, bool failed) {
    {
        std::lock_guard lock(mutex_);
        if (next_ == index) ++next_;
        failed_ = failed_ || failed;
    }
    turn_.notify_all();
}

std::optional<Digest> OrderedHash::finish() {
    std::lock_guard lock(mutex_);
    if (failed_) return std::nullopt;
    return hash_.finish();
}

void CommitPipeline::add(SealedBlock block) {
    // packaged_task needs a copyable callable: the block rides in a shared_ptr.
    auto held = std::make_shared<SealedBlock>(std::move(block));
    std::packaged_task<PutResult()> task;
    if (!whole_) {
        task = std::packaged_task<PutResult()>([held] { return held->install(); });
    } else {
        OrderedHash* whole = whole_;
        std::size_t index = added_;
        task = std::packaged_task<PutResult()>([held, whole, index] {
            {
                whole->wait_turn(index);
                // The turn passes on however hashing ends (a throw must not stall the rest),
                // and before the flush, so the disk work of blocks still overlaps.
                struct Pass {
                    OrderedHash* whole;
                    std::size_t index;
                    bool ok = false;
                    ~Pass() { whole->done(index, !ok); }
                } pass{whole, index};
                held->hash_now([whole](std::string_view d) { whole->update(d); });
                pass.ok = true;
            }
            return held->install();
        });
    }
    ++added_;
    in_flight_.push_back(pool_.submit(std::move(task)));
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

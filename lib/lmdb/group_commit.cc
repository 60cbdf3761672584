#include "lmdb/group_commit.hh"

#include <cerrno>
#include <latch>
#include <memory>
#include <pthread.h>
#include <stdexcept>
#include <sys/resource.h>
#include <unistd.h>

namespace strata::lmdb {

using detail::GroupOp;

namespace {
std::size_t positive(std::size_t max_batch) {
    if (max_batch == 0) throw std::invalid_argument("GroupCommit: max_batch must be positive");
    return max_batch;
}
} // namespace

GroupCommit::GroupCommit(Env& env, std::size_t max_batch, int writer_nice)
    : env_(env), max_batch_(positive(max_batch)) {
    std::latch started(1);
    writer_ = std::thread([this, &started, writer_nice] {
        pthread_setname_np(pthread_self(), "lmdb-commit");
        // Linux keeps a nice value per thread: this changes the writer alone.
        if (writer_nice != 0 &&
            setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), writer_nice) != 0)
            nice_error_ = errno;
        started.count_down();
        writer_loop();
    });
    started.wait();
}

GroupCommit::~GroupCommit() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    work_cv_.notify_one();
    writer_.join(); // the writer drains the queue before it returns
    // Callers woken by the last batch may still be inside submit(), using mu_.
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [this] { return callers_ == 0; });
}

std::uint64_t GroupCommit::batches() const noexcept {
    std::lock_guard lock(mu_);
    return batches_;
}

std::size_t GroupCommit::queued() const {
    std::lock_guard lock(mu_);
    return queued_;
}

void GroupCommit::submit(GroupOp& op) {
    if (std::this_thread::get_id() == writer_.get_id())
        throw std::logic_error("GroupCommit::run: called from inside an op");
    if (env_.held_by_this_thread())
        throw Error(EDEADLK, "GroupCommit::run: this thread holds a transaction of the Env");
    std::unique_lock lock(mu_);
    if (stop_) throw std::logic_error("GroupCommit::run: shutting down");
    append_locked(&op);
    ++callers_;
    work_cv_.notify_one();
    done_cv_.wait(lock, [&] { return op.done; });
    if (--callers_ == 0 && stop_) done_cv_.notify_all();
}

void GroupCommit::append_locked(GroupOp* op) {
    (tail_ ? tail_->next : head_) = op;
    tail_ = op;
    ++queued_;
}

void GroupCommit::enqueue(GroupOp* op) {
    std::unique_ptr<GroupOp, void (*)(GroupOp*)> owned(op, [](GroupOp* o) { o->discard(); });
    if (std::this_thread::get_id() == writer_.get_id())
        throw std::logic_error("GroupCommit::submit: called from inside an op");
    std::lock_guard lock(mu_);
    if (stop_) throw std::logic_error("GroupCommit::submit: shutting down");
    append_locked(op);
    owned.release();
    work_cv_.notify_one();
}

void GroupCommit::writer_loop() {
    for (;;) {
        GroupOp* first = nullptr;
        {
            std::unique_lock lock(mu_);
            work_cv_.wait(lock, [this] { return stop_ || head_; });
            if (!head_) return; // stopping and nothing left
            first = head_;
            GroupOp* last = first;
            std::size_t n = 1;
            for (; n < max_batch_ && last->next; ++n)
                last = last->next;
            head_ = last->next;
            if (!head_) tail_ = nullptr;
            last->next = nullptr;
            queued_ -= n;
        }
        const bool committed = run_batch(first);
        GroupOp* async_ops = nullptr; // the writer's own: completed outside the lock
        GroupOp** async_tail = &async_ops;
        {
            std::lock_guard lock(mu_);
            if (committed) ++batches_;
            // Read next before done: a done op's caller may return and free it.
            for (GroupOp* op = first; op;) {
                GroupOp* next = op->next;
                if (op->async) {
                    op->next = nullptr;
                    *async_tail = op;
                    async_tail = &op->next;
                } else {
                    op->done = true;
                }
                op = next;
            }
        }
        done_cv_.notify_all();
        while (async_ops) {
            GroupOp* next = async_ops->next;
            async_ops->complete();
            async_ops = next;
        }
    }
}

bool GroupCommit::run_batch(GroupOp* first) noexcept {
    std::exception_ptr failure;
    try {
        for (;;) {
            const std::size_t seen = env_.map_size();
            if (try_batch(first)) return true;
            env_.grow(seen); // the batch's transaction has ended: the gate lets us
        }
    } catch (...) {
        failure = std::current_exception();
    }
    // Nothing of the batch was written: ops that threw keep their own exception.
    for (GroupOp* op = first; op; op = op->next)
        if (!op->error) op->error = failure;
    return false;
}

bool GroupCommit::try_batch(GroupOp* first) {
    for (GroupOp* op = first; op; op = op->next)
        op->error = nullptr; // forget a previous attempt's failures
    Txn parent = env_.begin_write();
    for (GroupOp* op = first; op; op = op->next) {
        try {
            Txn child = parent.begin_child();
            op->exec(child);
            child.commit();
        } catch (const Error& e) {
            if (e.code() == MDB_MAP_FULL) return false; // unwinding aborts the whole batch
            op->error = std::current_exception();
        } catch (...) {
            op->error = std::current_exception(); // the child was aborted by unwinding
        }
    }
    try {
        parent.commit(); // the batch's one fsync
    } catch (const Error& e) {
        if (e.code() == MDB_MAP_FULL) return false;
        throw;
    }
    return true;
}

} // namespace strata::lmdb

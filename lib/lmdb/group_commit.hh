#pragma once
// GroupCommit: many writers share one durable commit. A synced commit costs an fsync; with
// many concurrent clients that each need their write durable before answering, one fsync
// per transaction is the bottleneck. run(fn) queues fn for one writer thread, which takes
// every queued op (up to max_batch), runs each in its own child transaction of one write
// transaction, and commits that once: one fsync for the whole batch.
//
// - run(fn) returns fn's result once fn's changes are durable (unless the Env uses
//   MDB_NOSYNC). If fn throws, its changes alone are rolled back and the same exception is
//   rethrown to the caller; the other ops of the batch still commit.
// - fn runs on the writer thread and, as with Env::write, may run more than once: on
//   MDB_MAP_FULL anywhere in a batch the whole batch is aborted, the map grown and every op
//   of it rerun. So fn must act only through its Txn (no outside side effects) and must
//   not return views into the transaction (they die with the commit).
// - If the batch's commit (or growing the map) fails, every op of the batch that did not
//   throw itself gets that error; nothing of the batch is written.
// - The caller must not hold a transaction of the Env (the writer may have to grow the map,
//   which waits for every transaction to end): run() throws Error(EDEADLK) instead. Nor may
//   fn call run() (it would wait for itself): std::logic_error.
// - The destructor completes every queued op, then stops the writer. run() after the
//   destructor started throws std::logic_error.
// - The writer thread is named "lmdb-commit". With writer_nice != 0 it sets its own nice
//   value: every durable write of the process waits for this one thread, which uses little
//   CPU, so when the CPUs are busy it should be the first to run (a lower value needs
//   RLIMIT_NICE, e.g. systemd's LimitNICE=, or CAP_SYS_NICE; see nice_error()).

#include "lmdb/env.hh"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <variant>

namespace strata::lmdb {

namespace detail {
// One queued run(): lives on the caller's stack until the writer completes it.
class GroupOp {
public:
    virtual void exec(Txn& txn) = 0; // runs fn once, keeps its result
    // Async ops (submit()): called by the writer once the batch is over; deletes the op.
    virtual void complete() noexcept {}
    // Async ops refused by submit(): deletes the op without completing it.
    virtual void discard() noexcept {}
    std::exception_ptr error; // set by the writer: fn's or the batch's failure
    bool done = false;        // guarded by GroupCommit::mu_
    bool async = false;       // owned by the writer, completed by complete()
    GroupOp* next = nullptr;  // intrusive queue: the writer never allocates for run()

protected:
    ~GroupOp() = default;
};

template <class F, class D>
class AsyncOp final : public GroupOp {
public:
    AsyncOp(F fn, D done) : fn_(std::move(fn)), done_(std::move(done)) { async = true; }
    void exec(Txn& txn) override { fn_(txn); }
    void complete() noexcept override {
        done_(error);
        delete this;
    }
    void discard() noexcept override { delete this; }

private:
    F fn_;
    D done_;
};

template <class F, class R>
class BoundOp final : public GroupOp {
public:
    explicit BoundOp(F& fn) : fn_(fn) {}
    void exec(Txn& txn) override {
        if constexpr (std::is_void_v<R>) {
            fn_(txn);
        } else {
            result_.reset(); // a rerun replaces the previous attempt's result
            result_.emplace(fn_(txn));
        }
    }
    R take() {
        if constexpr (!std::is_void_v<R>) return std::move(*result_);
    }

private:
    F& fn_;
    std::conditional_t<std::is_void_v<R>, std::monostate, std::optional<R>> result_;
};
} // namespace detail

class GroupCommit {
public:
    explicit GroupCommit(Env& env, std::size_t max_batch = 256, int writer_nice = 0);
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    // Runs fn(Txn&) in the next batch and waits until it is durably committed (see above).
    template <class F>
    std::invoke_result_t<F&, Txn&> run(F&& fn);

    // Queues fn(Txn&) like run() without waiting: done(std::exception_ptr) runs on the writer
    // thread once the batch is over, with nullptr when fn's changes are durable, else fn's
    // or the batch's error. fn follows run()'s rules (it may run more than once) and keeps
    // its results itself. done must not throw and must be quick (the next batch waits for
    // it): hand the outcome to another thread. Ops of a batch complete in queue order. A
    // thread holding a transaction may submit (nobody waits). Throws std::logic_error (and
    // neither fn nor done runs) once the destructor started, and from inside an op.
    template <class F, class D>
    void submit(F fn, D done);

    // Batches committed so far (one fsync each); for metrics and tests.
    std::uint64_t batches() const noexcept;
    // Ops waiting for the writer to take them.
    std::size_t queued() const;
    // Why the writer could not take writer_nice (errno, e.g. EACCES); 0 when it did or
    // when none was asked for. The writer keeps running at the process's nice value.
    int nice_error() const noexcept { return nice_error_; }

private:
    void submit(detail::GroupOp& op);        // queues op and waits until it is done
    void enqueue(detail::GroupOp* op);       // queues an async op (the writer owns it)
    void append_locked(detail::GroupOp* op); // to the queue's tail; mu_ held
    void writer_loop();
    bool run_batch(detail::GroupOp* first) noexcept; // true if committed
    bool try_batch(detail::GroupOp* first);          // false: map full, grow and retry

    Env& env_;
    const std::size_t max_batch_;
    mutable std::mutex mu_;
    std::condition_variable work_cv_; // writer: ops queued or stopping
    std::condition_variable done_cv_; // callers: ops done; destructor: callers gone
    detail::GroupOp* head_ = nullptr; // queued ops, oldest first
    detail::GroupOp* tail_ = nullptr;
    std::size_t queued_ = 0;
    std::size_t callers_ = 0; // threads inside submit()
    bool stop_ = false;
    std::uint64_t batches_ = 0; // guarded by mu_
    int nice_error_ = 0;        // written by the writer before the constructor returns
    std::thread writer_;        // last: starts once everything above exists
};

template <class F>
std::invoke_result_t<F&, Txn&> GroupCommit::run(F&& fn) {
    using R = std::invoke_result_t<F&, Txn&>;
    static_assert(!std::is_reference_v<R>, "GroupCommit::run: return a value, not a reference");
    detail::BoundOp<std::remove_reference_t<F>, R> op(fn);
    submit(op);
    if (op.error) std::rethrow_exception(op.error);
    return op.take();
}

template <class F, class D>
void GroupCommit::submit(F fn, D done) {
    enqueue(new detail::AsyncOp<F, D>(std::move(fn), std::move(done)));
}

} // namespace strata::lmdb

#include "lmdb/gate.hh"

#include "lmdb/error.hh"

#include <algorithm>
#include <cerrno>
#include <vector>

namespace strata::lmdb::detail {

namespace {
// Gates entered by this thread (one entry per open transaction). LMDB binds a transaction
// to the thread that began it (we do not use MDB_NOTLS), so thread-local tracking is exact.
thread_local std::vector<const ResizeGate*> t_held;
} // namespace

bool ResizeGate::held_by_this_thread() const noexcept {
    return std::find(t_held.begin(), t_held.end(), this) != t_held.end();
}

void ResizeGate::enter() {
    const bool reentrant = held_by_this_thread();
    t_held.push_back(this); // may throw bad_alloc: before we count ourselves in
    std::unique_lock lock(mu_);
    if (!reentrant) cv_.wait(lock, [this] { return !resizing_ && waiting_ == 0; });
    ++active_;
}

void ResizeGate::leave() noexcept {
    auto it = std::find(t_held.rbegin(), t_held.rend(), this);
    if (it != t_held.rend()) t_held.erase(std::next(it).base());
    std::lock_guard lock(mu_);
    if (--active_ == 0) cv_.notify_all();
}

void ResizeGate::lock_exclusive() {
    if (held_by_this_thread())
        throw Error(EDEADLK, "lmdb: cannot resize the map while this thread has an open "
                             "transaction");
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.wait(lock, [this] { return active_ == 0 && !resizing_; });
    --waiting_;
    resizing_ = true;
}

void ResizeGate::unlock_exclusive() noexcept {
    std::lock_guard lock(mu_);
    resizing_ = false;
    cv_.notify_all();
}

} // namespace strata::lmdb::detail

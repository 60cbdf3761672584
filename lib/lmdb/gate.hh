#pragma once
// ResizeGate: LMDB may only change the map size (mdb_env_set_mapsize) while no transaction
// of this process is open, because the old mapping is unmapped under any live reader. Every
// Txn holds the gate shared; a resize holds it exclusively. Resizers have priority so a busy
// stream of readers cannot starve growth. A thread that already holds the gate may enter it
// again without waiting (no self-deadlock), but may not resize: that throws instead.

#include <condition_variable>
#include <mutex>

namespace strata::lmdb::detail {

class ResizeGate {
public:
    void enter();
    void leave() noexcept;

    // Runs fn with no transaction open in this process. Throws Error(EDEADLK) if the
    // calling thread itself holds a transaction (it could never be released).
    template <class F>
    void exclusive(F&& fn) {
        lock_exclusive();
        try {
            fn();
        } catch (...) {
            unlock_exclusive();
            throw;
        }
        unlock_exclusive();
    }

    // True if the calling thread holds a transaction through this gate.
    bool held_by_this_thread() const noexcept;

private:
    void lock_exclusive();
    void unlock_exclusive() noexcept;

    std::mutex mu_;
    std::condition_variable cv_;
    unsigned active_ = 0;  // open transactions
    unsigned waiting_ = 0; // resizers waiting for active_ == 0
    bool resizing_ = false;
};

} // namespace strata::lmdb::detail

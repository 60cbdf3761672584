#pragma once
// Env: one LMDB environment (a directory holding data.mdb and lock.mdb), closed on
// destruction. Open transactions and cursors must end before the Env is destroyed.
//
// Map growth: LMDB fails a write with MDB_MAP_FULL when the memory map is full. write(fn)
// then aborts, doubles the map size and runs fn again. LMDB only allows mdb_env_set_mapsize
// while no transaction of this process is open, so every transaction holds a gate
// (detail::ResizeGate) and growing waits until all of them have ended. Consequences:
//  - fn may run more than once: it must only act through its Txn (no outside side effects);
//  - a thread that holds another transaction of the same Env while calling write() cannot
//    wait for itself: growing then throws Error(EDEADLK) instead of deadlocking.
// When another process grew the map, beginning a transaction returns MDB_MAP_RESIZED; the
// Env adopts the new size (mdb_env_set_mapsize(env, 0), same gate) and begins again.

#include "lmdb/dbi.hh"
#include "lmdb/error.hh"
#include "lmdb/gate.hh"
#include "lmdb/txn.hh"

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <type_traits>

namespace strata::lmdb {

struct EnvOptions {
    unsigned max_dbs = 32;                           // named databases (mdb_env_set_maxdbs)
    std::size_t map_size = std::size_t{16} << 20;    // initial map size, bytes
    std::size_t max_map_size = std::size_t{1} << 40; // write() never grows beyond this
    unsigned max_readers = 126;                      // concurrent read transactions
    unsigned flags = 0;     // extra mdb_env_open flags (MDB_RDONLY, MDB_NOSUBDIR, ...)
    unsigned mode = 0640;   // mode of the database files
    bool create_dir = true; // create the directory (0750) if it is missing
};

class Env {
public:
    explicit Env(const std::filesystem::path& path, const EnvOptions& opts = {});
    ~Env();
    // Not movable: transactions and the resize gate refer to it.
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    MDB_env* handle() const noexcept { return env_; }
    const std::filesystem::path& path() const noexcept { return path_; }
    unsigned flags() const;
    std::size_t map_size() const noexcept { return map_size_.load(); }
    std::size_t max_map_size() const noexcept { return max_map_size_; }

    Txn begin_read();
    Txn begin_write();

    // Runs fn(Txn&) in a write transaction and commits; grows the map and retries on
    // MDB_MAP_FULL (see above). Any exception from fn aborts the transaction.
    template <class F>
    std::invoke_result_t<F&, Txn&> write(F&& fn);

    // Runs fn(Txn&) in a read transaction.
    template <class F>
    std::invoke_result_t<F&, Txn&> read(F&& fn) {
        Txn txn = begin_read();
        return fn(txn);
    }

    // Opens (creates with MDB_CREATE, the default) a named database in its own write
    // transaction. An empty name is the unnamed main database.
    Dbi open_dbi(std::string_view name, unsigned flags = MDB_CREATE);

    // Doubles the map size unless it already grew past seen_size (another thread did it).
    // Throws Error(MDB_MAP_FULL) when max_map_size is reached.
    void grow(std::size_t seen_size);

    // Flushes to disk; only needed with MDB_NOSYNC / MDB_NOMETASYNC.
    void sync();

    // True if the calling thread holds a transaction of this Env (it could not wait for a
    // map resize, see above).
    bool held_by_this_thread() const noexcept { return gate_.held_by_this_thread(); }

private:
    friend class Txn; // leaves gate_ when it ends
    Txn begin(unsigned flags);
    void adopt_map_size(); // after MDB_MAP_RESIZED
    void refresh_map_size();

    MDB_env* env_ = nullptr;
    std::filesystem::path path_;
    std::size_t max_map_size_;
    std::atomic<std::size_t> map_size_{0};
    detail::ResizeGate gate_;
    std::mutex dbi_mu_; // serialises open_dbi on read-only environments
};

template <class F>
std::invoke_result_t<F&, Txn&> Env::write(F&& fn) {
    using R = std::invoke_result_t<F&, Txn&>;
    for (;;) {
        const std::size_t seen = map_size();
        try {
            Txn txn = begin_write();
            if constexpr (std::is_void_v<R>) {
                fn(txn);
                txn.commit();
                return;
            } else {
                R result = fn(txn);
                txn.commit();
                return result;
            }
        } catch (const Error& e) {
            if (e.code() != MDB_MAP_FULL) throw;
        } // the aborted transaction is gone here, so the gate lets us grow
        grow(seen);
    }
}

} // namespace strata::lmdb

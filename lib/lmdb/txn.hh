#pragma once
// Txn: one LMDB transaction. A Txn that is neither committed nor aborted is aborted when it
// is destroyed. Values returned by get() and cursors point into the memory map: they are
// valid until the transaction ends or, in a write transaction, until the next write.
// A transaction belongs to the thread that began it, and a thread holds at most one read
// transaction at a time (LMDB rules without MDB_NOTLS; a second one fails with
// MDB_BAD_RSLOT). A thread may hold a read transaction while it writes.
//
// Nested transactions: begin_child() on an active write Txn starts a child in the same
// thread. Its commit merges its changes into the parent (durable only when the outermost
// parent commits); its abort discards only its own changes. While a child is active the
// parent and its cursors must not be used (they throw: LMDB blocks the parent). Ending the
// parent first aborts an active child. The child does not enter the Env's resize gate: the
// parent already holds it for both, and only the outermost transaction leaves it.

#include "lmdb/dbi.hh"

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace strata::lmdb {

class Env;
class Cursor;

namespace detail {
// Heap state of a Txn so that moving the Txn does not move what its cursors point at.
struct TxnState {
    Env* env = nullptr;
    MDB_txn* txn = nullptr;
    bool readonly = false;
    std::vector<Cursor*> cursors; // open cursors, closed before the transaction ends
    TxnState* parent = nullptr;   // set in a child transaction
    TxnState* child = nullptr;    // the active child, if any (LMDB allows one)
};
} // namespace detail

class Txn {
public:
    Txn(Txn&&) noexcept = default;
    Txn& operator=(Txn&& other) noexcept;
    ~Txn();

    bool active() const noexcept { return st_ && st_->txn; }
    bool readonly() const noexcept { return st_->readonly; }
    MDB_txn* handle() const noexcept { return st_ ? st_->txn : nullptr; }
    Env& env() const noexcept { return *st_->env; }

    // Makes the changes durable (unless the Env was opened with MDB_NOSYNC) and ends the
    // transaction; on failure (e.g. MDB_MAP_FULL) the transaction is aborted and Error thrown.
    void commit();
    // Discards the changes and ends the transaction. No-op if it already ended.
    void abort() noexcept;

    // Begins a child of this active write transaction (see above).
    Txn begin_child();

    // Opens (MDB_CREATE: creates) a named database. Only in write transactions: LMDB forbids
    // two transactions opening databases at the same time, and write transactions are
    // serialised by LMDB itself.
    Dbi open_dbi(std::string_view name, unsigned flags = 0);

    std::optional<std::string_view> get(Dbi dbi, std::string_view key) const;
    void put(Dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
    // put with MDB_NOOVERWRITE: false (and nothing written) if the key already exists.
    bool insert(Dbi dbi, std::string_view key, std::string_view value);
    // Deletes the key (all its values in an MDB_DUPSORT database); false if absent.
    bool del(Dbi dbi, std::string_view key);
    // Deletes one key/value pair of an MDB_DUPSORT database; false if absent.
    bool del(Dbi dbi, std::string_view key, std::string_view value);
    // Removes every entry of the database (the database itself stays).
    void clear(Dbi dbi);
    // Number of entries (mdb_stat, O(1)).
    std::size_t entries(Dbi dbi) const;
    // Compares two keys with the database's key order (mdb_cmp).
    int compare(Dbi dbi, std::string_view a, std::string_view b) const;

private:
    friend class Env;
    friend class Cursor;
    explicit Txn(std::unique_ptr<detail::TxnState> st) noexcept : st_(std::move(st)) {}
    void require_active(const char* what) const;
    // On the state rather than the Txn: a parent ends its child through the child's state.
    static void close_cursors(detail::TxnState& st) noexcept; // before the end, as LMDB requires
    static void finish(detail::TxnState& st) noexcept; // forgets the ended txn, leaves the gate
    static void abort(detail::TxnState& st) noexcept;

    std::unique_ptr<detail::TxnState> st_;
};

// Converts between std::string_view and MDB_val (LMDB never writes through mv_data here).
inline MDB_val to_val(std::string_view s) noexcept {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view to_view(const MDB_val& v) noexcept {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

} // namespace strata::lmdb

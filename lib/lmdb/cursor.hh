#pragma once
// Cursor: RAII LMDB cursor over one database of a transaction. Entries are
// (key, value) views into the map with the same lifetime as Txn::get results. The
// transaction closes its open cursors when it ends; a Cursor outliving it is inert
// (open() == false) and destroying it is safe.
//
// Range iteration, in the database's key order:
//   for (auto [k, v] : cur.all())             every entry
//   for (auto [k, v] : cur.from("b"))         keys >= "b"
//   for (auto [k, v] : cur.range("b", "d"))   "b" <= key < "d"
//   for (auto [k, v] : cur.prefix("user/"))   keys starting with "user/" (byte order only)
// Deleting the current entry with del() inside such a loop is allowed: LMDB leaves the
// cursor so that the next step lands on the following entry.

#include "lmdb/txn.hh"

#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace strata::lmdb {

class Cursor {
public:
    using Entry = std::pair<std::string_view, std::string_view>;
    class Range;

    Cursor(Txn& txn, Dbi dbi);
    ~Cursor();
    Cursor(Cursor&& other) noexcept;
    Cursor& operator=(Cursor&& other) noexcept;
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;

    bool open() const noexcept { return cur_ != nullptr; }
    Dbi dbi() const noexcept { return dbi_; }

    std::optional<Entry> first();
    std::optional<Entry> last();
    std::optional<Entry> next();
    std::optional<Entry> prev();
    std::optional<Entry> current();
    // First entry whose key is >= key (MDB_SET_RANGE).
    std::optional<Entry> seek(std::string_view key);
    // Entry with exactly this key (MDB_SET_KEY).
    std::optional<Entry> find(std::string_view key);

    // Writes through the cursor (mdb_cursor_put) and leaves it on the written entry.
    void put(std::string_view key, std::string_view value, unsigned flags = 0);
    // Deletes the entry under the cursor (flags: MDB_NODUPDATA for all duplicates).
    void del(unsigned flags = 0);

    Range all();
    Range from(std::string_view start);
    Range range(std::string_view start, std::string_view end);
    Range prefix(std::string_view prefix);

private:
    friend class Txn;
    std::optional<Entry> op(MDB_cursor_op op, std::string_view key = {});
    void require_open(const char* what) const;
    void detach() noexcept; // closes the LMDB cursor (called by the transaction)

    MDB_cursor* cur_ = nullptr;
    detail::TxnState* st_ = nullptr;
    Dbi dbi_;
};

class Cursor::Range {
public:
    class iterator {
    public:
        using value_type = Entry;
        using difference_type = std::ptrdiff_t;

        const Entry& operator*() const { return *cur_; }
        const Entry* operator->() const { return &*cur_; }
        iterator& operator++();
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const { return !cur_; }

    private:
        friend class Range;
        iterator(const Range* range, std::optional<Entry> e);
        const Range* range_;
        std::optional<Entry> cur_;
    };

    iterator begin();
    std::default_sentinel_t end() const { return {}; }

private:
    friend class Cursor;
    enum class Bound { none, before, prefix };
    Range(Cursor& c, std::optional<std::string> start, Bound bound, std::string limit)
        : c_(&c), start_(std::move(start)), bound_(bound), limit_(std::move(limit)) {}
    bool within(std::string_view key) const;

    Cursor* c_;
    std::optional<std::string> start_; // owned: the range may outlive its arguments
    Bound bound_;
    std::string limit_;
};

} // namespace strata::lmdb

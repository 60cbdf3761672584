#include "lmdb/cursor.hh"

#include "lmdb/error.hh"

#include <algorithm>
#include <cerrno>
#include <string>

namespace strata::lmdb {

Cursor::Cursor(Txn& txn, Dbi dbi) : dbi_(dbi) {
    txn.require_active("mdb_cursor_open");
    txn.st_->cursors.reserve(txn.st_->cursors.size() + 1); // no throw after the open
    check(mdb_cursor_open(txn.handle(), dbi.handle(), &cur_), "mdb_cursor_open");
    st_ = txn.st_.get();
    st_->cursors.push_back(this);
}

Cursor::~Cursor() {
    detach();
}

Cursor::Cursor(Cursor&& other) noexcept
    : cur_(std::exchange(other.cur_, nullptr)), st_(std::exchange(other.st_, nullptr)),
      dbi_(other.dbi_) {
    if (st_) std::replace(st_->cursors.begin(), st_->cursors.end(), &other, this);
}

Cursor& Cursor::operator=(Cursor&& other) noexcept {
    if (this != &other) {
        detach();
        cur_ = std::exchange(other.cur_, nullptr);
        st_ = std::exchange(other.st_, nullptr);
        dbi_ = other.dbi_;
        if (st_) std::replace(st_->cursors.begin(), st_->cursors.end(), &other, this);
    }
    return *this;
}

void Cursor::detach() noexcept {
    if (!cur_) return;
    mdb_cursor_close(cur_);
    cur_ = nullptr;
    if (st_) std::erase(st_->cursors, this);
    st_ = nullptr;
}

void Cursor::require_open(const char* what) const {
    if (!cur_) throw Error(EINVAL, std::string(what) + ": cursor is closed");
    // LMDB silently moves a parent's cursors into its child: refuse instead.
    if (st_ && st_->child)
        throw Error(EINVAL, std::string(what) + ": a child transaction is active");
}

std::optional<Cursor::Entry> Cursor::op(MDB_cursor_op o, std::string_view key) {
    require_open("mdb_cursor_get");
    MDB_val k = to_val(key), v{};
    int rc = mdb_cursor_get(cur_, &k, &v, o);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    // Reading the current entry of a cursor that was never positioned.
    if (rc == EINVAL && o == MDB_GET_CURRENT) return std::nullopt;
    check(rc, "mdb_cursor_get");
    return Entry{to_view(k), to_view(v)};
}

std::optional<Cursor::Entry> Cursor::first() {
    return op(MDB_FIRST);
}
std::optional<Cursor::Entry> Cursor::last() {
    return op(MDB_LAST);
}
std::optional<Cursor::Entry> Cursor::next() {
    return op(MDB_NEXT);
}
std::optional<Cursor::Entry> Cursor::prev() {
    return op(MDB_PREV);
}
std::optional<Cursor::Entry> Cursor::current() {
    return op(MDB_GET_CURRENT);
}
std::optional<Cursor::Entry> Cursor::seek(std::string_view key) {
    return op(MDB_SET_RANGE, key);
}
std::optional<Cursor::Entry> Cursor::find(std::string_view key) {
    return op(MDB_SET_KEY, key);
}

void Cursor::put(std::string_view key, std::string_view value, unsigned flags) {
    require_open("mdb_cursor_put");
    MDB_val k = to_val(key), v = to_val(value);
    check(mdb_cursor_put(cur_, &k, &v, flags), "mdb_cursor_put");
}

void Cursor::del(unsigned flags) {
    require_open("mdb_cursor_del");
    check(mdb_cursor_del(cur_, flags), "mdb_cursor_del");
}

Cursor::Range Cursor::all() {
    return Range(*this, std::nullopt, Range::Bound::none, {});
}
Cursor::Range Cursor::from(std::string_view start) {
    return Range(*this, std::string(start), Range::Bound::none, {});
}
Cursor::Range Cursor::range(std::string_view start, std::string_view end) {
    return Range(*this, std::string(start), Range::Bound::before, std::string(end));
}
Cursor::Range Cursor::prefix(std::string_view p) {
    return Range(*this, std::string(p), Range::Bound::prefix, std::string(p));
}

bool Cursor::Range::within(std::string_view key) const {
    switch (bound_) {
    case Bound::none:
        return true;
    case Bound::prefix:
        return key.starts_with(limit_);
    case Bound::before: {
        MDB_val a = to_val(key), b = to_val(limit_);
        return mdb_cmp(mdb_cursor_txn(c_->cur_), c_->dbi_.handle(), &a, &b) < 0;
    }
    }
    return false;
}

Cursor::Range::iterator Cursor::Range::begin() {
    return iterator(this, start_ ? c_->seek(*start_) : c_->first());
}

Cursor::Range::iterator::iterator(const Range* range, std::optional<Entry> e) : range_(range) {
    if (e && range_->within(e->first)) cur_ = e;
}

Cursor::Range::iterator& Cursor::Range::iterator::operator++() {
    auto e = range_->c_->next();
    if (e && range_->within(e->first))
        cur_ = e;
    else
        cur_.reset();
    return *this;
}

} // namespace strata::lmdb

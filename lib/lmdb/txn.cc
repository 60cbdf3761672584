#include "lmdb/txn.hh"

#include "lmdb/cursor.hh"
#include "lmdb/env.hh"

#include <cerrno>
#include <string>

namespace strata::lmdb {

Txn& Txn::operator=(Txn&& other) noexcept {
    if (this != &other) {
        abort();
        st_ = std::move(other.st_);
    }
    return *this;
}

Txn::~Txn() {
    abort();
}

void Txn::require_active(const char* what) const {
    if (!active()) throw Error(EINVAL, std::string(what) + ": transaction is not active");
    if (st_->child) throw Error(EINVAL, std::string(what) + ": a child transaction is active");
}

void Txn::close_cursors(detail::TxnState& st) noexcept {
    auto cursors = std::move(st.cursors);
    st.cursors.clear();
    for (Cursor* c : cursors) {
        c->st_ = nullptr; // already unlisted
        c->detach();
    }
}

void Txn::finish(detail::TxnState& st) noexcept {
    st.txn = nullptr;
    if (st.parent) { // the outermost transaction holds the gate for its children
        st.parent->child = nullptr;
        st.parent = nullptr;
    } else {
        st.env->gate_.leave();
    }
}

void Txn::commit() {
    require_active("mdb_txn_commit");
    close_cursors(*st_);
    int rc = mdb_txn_commit(st_->txn); // frees the transaction even when it fails
    finish(*st_);
    check(rc, "mdb_txn_commit");
}

void Txn::abort() noexcept {
    if (st_) abort(*st_);
}

void Txn::abort(detail::TxnState& st) noexcept {
    if (!st.txn) return;
    if (st.child) abort(*st.child); // LMDB would free it under the child's Txn
    close_cursors(st);
    mdb_txn_abort(st.txn);
    finish(st);
}

Txn Txn::begin_child() {
    require_active("mdb_txn_begin");
    if (readonly()) throw Error(EINVAL, "mdb_txn_begin: read transactions cannot nest");
    auto st = std::make_unique<detail::TxnState>();
    st->env = st_->env;
    check(mdb_txn_begin(st_->env->handle(), st_->txn, 0, &st->txn), "mdb_txn_begin");
    st->parent = st_.get();
    st_->child = st.get();
    return Txn(std::move(st));
}

Dbi Txn::open_dbi(std::string_view name, unsigned flags) {
    require_active("mdb_dbi_open");
    if (readonly()) throw Error(EINVAL, "mdb_dbi_open: needs a write transaction");
    const std::string n(name);
    MDB_dbi dbi = 0;
    check(mdb_dbi_open(st_->txn, name.empty() ? nullptr : n.c_str(), flags, &dbi), "mdb_dbi_open");
    return Dbi(dbi);
}

std::optional<std::string_view> Txn::get(Dbi dbi, std::string_view key) const {
    require_active("mdb_get");
    MDB_val k = to_val(key), v{};
    int rc = mdb_get(st_->txn, dbi.handle(), &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "mdb_get");
    return to_view(v);
}

void Txn::put(Dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
    require_active("mdb_put");
    MDB_val k = to_val(key), v = to_val(value);
    check(mdb_put(st_->txn, dbi.handle(), &k, &v, flags), "mdb_put");
}

bool Txn::insert(Dbi dbi, std::string_view key, std::string_view value) {
    require_active("mdb_put");
    MDB_val k = to_val(key), v = to_val(value);
    int rc = mdb_put(st_->txn, dbi.handle(), &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return false;
    check(rc, "mdb_put");
    return true;
}

bool Txn::del(Dbi dbi, std::string_view key) {
    require_active("mdb_del");
    MDB_val k = to_val(key);
    int rc = mdb_del(st_->txn, dbi.handle(), &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_del");
    return true;
}

bool Txn::del(Dbi dbi, std::string_view key, std::string_view value) {
    require_active("mdb_del");
    MDB_val k = to_val(key), v = to_val(value);
    int rc = mdb_del(st_->txn, dbi.handle(), &k, &v);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_del");
    return true;
}

void Txn::clear(Dbi dbi) {
    require_active("mdb_drop");
    check(mdb_drop(st_->txn, dbi.handle(), 0), "mdb_drop");
}

std::size_t Txn::entries(Dbi dbi) const {
    require_active("mdb_stat");
    MDB_stat st{};
    check(mdb_stat(st_->txn, dbi.handle(), &st), "mdb_stat");
    return st.ms_entries;
}

int Txn::compare(Dbi dbi, std::string_view a, std::string_view b) const {
    MDB_val x = to_val(a), y = to_val(b);
    return mdb_cmp(st_->txn, dbi.handle(), &x, &y);
}

} // namespace strata::lmdb

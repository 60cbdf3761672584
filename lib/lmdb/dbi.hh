#pragma once
// Dbi: handle of one database inside an Env. Handles come from Env::open_dbi or
// Txn::open_dbi, stay valid for the life of the Env once the opening transaction committed,
// and need no closing (LMDB frees them with the Env), so Dbi is a plain copyable value.

#include <lmdb.h>

namespace strata::lmdb {

class Dbi {
public:
    Dbi() = default;
    explicit Dbi(MDB_dbi handle) : handle_(handle) {}

    MDB_dbi handle() const noexcept { return handle_; }

    friend bool operator==(Dbi, Dbi) = default;

private:
    MDB_dbi handle_ = 0; // 0 is the unnamed main database
};

} // namespace strata::lmdb

#include "lmdb/error.hh"

#include <lmdb.h>

namespace strata::lmdb {

Error::Error(int code, const std::string& context)
    : std::runtime_error(context + ": " + mdb_strerror(code)), code_(code) {}

void check(int rc, const char* what) {
    if (rc != MDB_SUCCESS) throw Error(rc, what);
}

} // namespace strata::lmdb

#pragma once
// The one error type of strata::lmdb: every failing LMDB call throws it.

#include <stdexcept>
#include <string>

namespace strata::lmdb {

class Error : public std::runtime_error {
public:
    // code is an MDB_* error (MDB_MAP_FULL, MDB_NOTFOUND, ...) or an errno value.
    Error(int code, const std::string& context);

    int code() const noexcept { return code_; }

private:
    int code_;
};

// Throws Error(rc, what) unless rc is MDB_SUCCESS.
void check(int rc, const char* what);

} // namespace strata::lmdb

#include "lmdb/env.hh"

#include <algorithm>
#include <system_error>

namespace strata::lmdb {

Env::Env(const std::filesystem::path& path, const EnvOptions& opts)
    : path_(path), max_map_size_(std::max(opts.max_map_size, opts.map_size)) {
    if (opts.create_dir && !(opts.flags & (MDB_NOSUBDIR | MDB_RDONLY))) {
        std::error_code ec;
        if (std::filesystem::create_directories(path, ec))
            std::filesystem::permissions(path, std::filesystem::perms(0750), ec);
        if (ec) throw Error(ec.value(), "lmdb: cannot create " + path.string());
    }
    check(mdb_env_create(&env_), "mdb_env_create");
    try {
        check(mdb_env_set_maxdbs(env_, opts.max_dbs), "mdb_env_set_maxdbs");
        check(mdb_env_set_maxreaders(env_, opts.max_readers), "mdb_env_set_maxreaders");
        check(mdb_env_set_mapsize(env_, opts.map_size), "mdb_env_set_mapsize");
        // An existing file with a larger map keeps its size: mdb_env_open adopts it.
        check(mdb_env_open(env_, path.c_str(), opts.flags, static_cast<mdb_mode_t>(opts.mode)),
              ("mdb_env_open " + path.string()).c_str());
    } catch (...) {
        mdb_env_close(env_);
        throw;
    }
    refresh_map_size();
}

Env::~Env() {
    mdb_env_close(env_);
}

unsigned Env::flags() const {
    unsigned f = 0;
    check(mdb_env_get_flags(env_, &f), "mdb_env_get_flags");
    return f;
}

void Env::refresh_map_size() {
    MDB_envinfo info{};
    check(mdb_env_info(env_, &info), "mdb_env_info");
    map_size_ = info.me_mapsize;
}

Txn Env::begin_read() {
    return begin(MDB_RDONLY);
}
Txn Env::begin_write() {
    return begin(0);
}

Txn Env::begin(unsigned flags) {
    auto st = std::make_unique<detail::TxnState>();
    st->env = this;
    st->readonly = (flags & MDB_RDONLY) != 0;
    for (;;) {
        gate_.enter();
        int rc = mdb_txn_begin(env_, nullptr, flags, &st->txn);
        if (rc == MDB_SUCCESS) return Txn(std::move(st)); // the Txn leaves the gate
        gate_.leave();
        if (rc != MDB_MAP_RESIZED) throw Error(rc, "mdb_txn_begin");
        adopt_map_size();
    }
}

void Env::adopt_map_size() {
    gate_.exclusive([this] {
        check(mdb_env_set_mapsize(env_, 0), "mdb_env_set_mapsize");
        refresh_map_size();
    });
}

void Env::grow(std::size_t seen_size) {
    gate_.exclusive([&] {
        refresh_map_size();
        const std::size_t cur = map_size_;
        if (cur > seen_size) return; // another thread already grew it
        if (cur >= max_map_size_) throw Error(MDB_MAP_FULL, "lmdb: map reached max_map_size");
        const std::size_t next = cur > max_map_size_ / 2 ? max_map_size_ : cur * 2;
        check(mdb_env_set_mapsize(env_, next), "mdb_env_set_mapsize");
        refresh_map_size();
    });
}

Dbi Env::open_dbi(std::string_view name, unsigned flags) {
    if (!(this->flags() & MDB_RDONLY))
        return write([&](Txn& t) { return t.open_dbi(name, flags); });
    // Read-only environment: open in a read transaction. LMDB forbids concurrent opens,
    // which a mutex prevents here; the handle stays valid after the transaction.
    std::lock_guard lock(dbi_mu_);
    Txn t = begin_read();
    const std::string n(name);
    MDB_dbi dbi = 0;
    check(mdb_dbi_open(t.handle(), name.empty() ? nullptr : n.c_str(), flags, &dbi),
          "mdb_dbi_open");
    t.commit(); // a committed read transaction keeps the handle open
    return Dbi(dbi);
}

void Env::sync() {
    check(mdb_env_sync(env_, 1), "mdb_env_sync");
}

} // namespace strata::lmdb

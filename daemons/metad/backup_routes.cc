#include "backup_routes.hh"

#include "route_util.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::metad {

void add_backup_routes(http::Router& router, MetaStore& store, std::filesystem::path scratch) {
    // Copying a large database takes a while: off the loop.
    router.add_blocking("GET", "/v1/meta/backup", [&store, scratch](http::Request& req) {
        route_util::require_operator(req); // the whole database: never through the gateway
        std::filesystem::path tmp =
            scratch / ("backup-" + std::to_string(store.next_id()) + ".mdb.part");
        int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            throw http::Error(errno == ENOSPC ? 507 : 500, "backup_failed",
                              "cannot create a scratch file: " + std::string(std::strerror(errno)));
        ::unlink(tmp.c_str()); // nameless from now on: the fd keeps it until it is sent
        int rc = mdb_env_copyfd2(store.env().handle(), fd, MDB_CP_COMPACT);
        struct stat st {};
        if (rc != 0 || ::fstat(fd, &st) != 0) {
            ::close(fd);
            throw http::Error(rc == ENOSPC ? 507 : 500, "backup_failed",
                              std::string("cannot copy the database: ") +
                                  (rc ? mdb_strerror(rc) : std::strerror(errno)));
        }
        http::Response r;
        r.headers.emplace("Content-Type", "application/octet-stream");
        r.headers.emplace("Content-Disposition", "attachment; filename=\"metad-backup.mdb\"");
        r.file = http::FileBody{fd, 0, static_cast<std::uint64_t>(st.st_size)};
        return r;
    });
}

} // namespace strata::metad

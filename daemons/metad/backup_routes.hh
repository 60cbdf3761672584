// Consistent copies of metad's database while it serves:
//   GET /v1/meta/backup   the LMDB environment, compacted (mdb_env_copy2 with MDB_CP_COMPACT,
//                         one read transaction: a snapshot, writers go on meanwhile), as an
//                         application/octet-stream body ready to be restored as data.mdb.
// The copy is written to a nameless scratch file in the state directory (space for one more
// copy is needed there) and sent from it with sendfile.
#pragma once

#include "http/router.hh"
#include "meta_store.hh"

#include <filesystem>

namespace strata::metad {

void add_backup_routes(http::Router& router, MetaStore& store, std::filesystem::path scratch_dir);

} // namespace strata::metad

// metad's tree routes: folders, the file commit protocol with blockd, one-shot uploads,
// stat, listing, rename/move/retag, trash. See strata-metad(8) for the whole API.
//
//   POST   /v1/folders                 {"parent","name"} -> 201 node
//   POST   /v1/files                   {"parent","name","blocks":[sha256...],"size"?,
//                                       "sha256"?,"type"?,"tags"?} -> 201 node;
//                                       409 missing_blocks {"missing":[...]}: upload them
//                                       to blockd (PUT /v1/blocks/{sha256}) and commit again
//   POST   /v1/upload?parent=&name=&type=   the file as the body (one request, any client):
//                                       stored through blockd's POST /v1/blobs, then
//                                       committed -> 201 node
//   GET    /v1/nodes/{id}              stat by id (ETag: "VERSION"; "access": your role)
//   GET    /v1/stat?path=/a/b          stat by path from your root
//   GET    /v1/nodes/{id}/children     ?cursor=&limit= a page in name order
//   PATCH  /v1/nodes/{id}              {"name"?,"parent"?,"tags"?}, If-Match -> node
//   DELETE /v1/nodes/{id}              to the trash (If-Match optional) -> node
//   POST   /v1/nodes/{id}/restore      {"name"?} -> node
//   GET    /v1/trash                   ?cursor=&limit= what is in your trash
//   DELETE /v1/trash/{id}              purge one node (and all below it) -> {"removed"}
//   DELETE /v1/trash                   empty the trash -> {"removed"}
//   PUT    /v1/nodes/{id}/processing   {"state":"ready"|"failed"|"processing",
//                                       "renditions":[...], "processing":{"percent",
//                                       "stage"}|{"error"}} (transcoded; operators only)
//   GET    /v1/nodes/{id}/content      302 to a signed blockd URL (download_routes.cc)
#pragma once

#include "http/router.hh"
#include "http_client/async_client.hh"
#include "http_client/client.hh"
#include "route_util.hh"

#include <chrono>
#include <filesystem>
#include <memory>

namespace strata::metad {

struct FileOptions {
    std::shared_ptr<http_client::Client> blockd; // null: commits and uploads answer 503
    // The same blockd on the daemon's loop, for commits (null: commits answer 503). Owned by
    // main, which destroys it when the loop stops.
    http_client::AsyncClient* blockd_async = nullptr;
    std::uint64_t max_upload_bytes = std::uint64_t{16} << 30;
    std::filesystem::path spool_dir; // one-shot uploads wait here (unlinked files)
    std::chrono::seconds verify_timeout{600};
    // Downloads: how long blockd's signed URLs last, and what is put before their
    // "/c/..." path ("" keeps it relative to the host the client asked).
    std::chrono::seconds content_url_ttl{600};
    std::string content_url_base;
};

void add_tree_routes(http::Router& router, const std::shared_ptr<route_util::Context>& ctx,
                     FileOptions files);
// Called by add_tree_routes.
void add_download_routes(http::Router& router, const std::shared_ptr<route_util::Context>& ctx,
                         std::shared_ptr<const FileOptions> files);

} // namespace strata::metad

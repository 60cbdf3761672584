// Whole files on blockd's control socket:
//   POST /v1/blobs               a body of any size, split into 4 MiB blocks as it streams in;
//                                answers the manifest id, size, SHA-256 and block list
//   GET|HEAD /v1/content/{id}    the file of manifest `id`, with ETag (its SHA-256),
//                                Last-Modified, conditional requests (304/412) and single or
//                                multiple Range requests (206, multipart/byteranges, 416)
#pragma once

#include "block_store.hh"
#include "http/router.hh"

#include <cstdint>
#include <functional>
#include <string>

namespace strata::blockd {

struct ContentOptions {
    std::uint64_t max_blob_bytes;               // POST /v1/blobs limit (413)
    std::function<std::string()> cache_control; // read per request (reloadable)
};

void add_content_routes(http::Router& router, BlockStore& blocks, BlockStore& manifests,
                        ContentOptions options);

} // namespace strata::blockd

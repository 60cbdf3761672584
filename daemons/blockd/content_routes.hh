// Whole files on blockd's control socket:
//   POST /v1/blobs               a body of any size, split into 4 MiB blocks as it streams in;
//                                answers the manifest id, size, SHA-256 and block list
//   GET|HEAD /v1/content/{id}    the file of manifest `id`, with ETag (its SHA-256),
//                                Last-Modified, conditional requests (304/412) and single or
//                                multiple Range requests (206, multipart/byteranges, 416)
//   GET|HEAD /c/{id}?exp=&sig=   the same, for a signed public URL (403 when expired/forged)
//   POST /v1/sign                {"id": ID, "ttl": SECONDS} -> {"url": "/c/...", "expires": T}
#pragma once

#include "block_store.hh"
#include "http/router.hh"
#include "signed_url.hh"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace strata::blockd {

struct ContentOptions {
    std::uint64_t max_blob_bytes;               // POST /v1/blobs limit (413)
    std::function<std::string()> cache_control; // read per request (reloadable)
    std::shared_ptr<const UrlSigner> signer;    // null: signed URLs are not configured
};

class IoPool;
class ContentCache;

// `pool` flushes uploaded blocks while the next ones arrive; `cache` holds manifests and
// open blocks for serving.
void add_content_routes(http::Router& router, BlockStore& blocks, BlockStore& manifests,
                        ContentCache& cache, IoPool& pool, ContentOptions options);

// What blockd serves on TCP (public.listen): GET /healthz and the signed /c/ links only.
void add_public_routes(http::Router& router, ContentCache& cache, const ContentOptions& options);

} // namespace strata::blockd

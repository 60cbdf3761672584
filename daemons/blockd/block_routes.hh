// The block upload API on blockd's control socket:
//   PUT  /v1/blocks/{sha256}       one block (<= 4 MiB), streamed to disk and verified
//   POST /v1/blocks/missing        {"blocks":[...]} -> {"missing":[...]}
// Serving, blobs, verification and GC come later (issue 3 is in progress).
#pragma once

#include "block_store.hh"
#include "http/router.hh"
#include "metrics/metrics.hh"

namespace strata::blockd {

void add_block_routes(http::Router& router, BlockStore& store, metrics::Registry& metrics);

// The HTTP answer for a store error: 400 invalid/mismatch, 413 too large, 507 disk full.
http::Error to_http_error(const BlockError& e);

} // namespace strata::blockd

// Content verification on blockd's control socket:
//   POST /v1/verify  {"blocks":["<sha256>", ...]}   the concatenation of these blocks
//                or  {"id":"<manifest id>"}          a stored file (POST /v1/blobs)
//   -> 200 {"size":N, "sha256":"<hex of the whole content>", "media_type":"image/png",
//           "scan":{"verdict":"clean"|"infected"|"unavailable", "signature":"...",
//                   "reason":"..."}}
// With "manifest": true (and optionally "type": the declared media type) the manifest of the
// content is stored too and its id answered as "manifest" — unless the scan found malware.
// "signature" is set when infected, "reason" when unavailable (no scanner configured,
// content over the scan limit, libclamav error).
// Errors: 400 bad request / invalid hash, 404 missing blocks or manifest (the body lists
// the missing blocks), 413 over max_bytes, 415 media type not allowed, 500 corrupt block.
//
// The content is streamed from the block files (64 KiB at a time, one block fd open at a
// time): memory does not grow with the content size. It is read twice: once to hash and
// check every block, once by libclamav (over one continuous map of all the blocks, so a
// signature that straddles a block boundary is found).
#pragma once

#include "block_store.hh"
#include "http/router.hh"
#include "scanner.hh"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace strata::blockd {

struct VerifyOptions {
    std::uint64_t max_bytes = 0;            // 0: no limit; larger content gets 413
    std::vector<std::string> allowed_types; // empty: any; "image/png" or "image/*"; else 415
    std::shared_ptr<Scanner> scanner;       // null: scan verdict "unavailable"
};

// The blocks of some content, read as one byte stream. Opens one block at a time.
class BlockSpan {
public:
    // Stats every block: throws http::Error 400 for an invalid hash, 404 (listing them) for
    // absent blocks.
    BlockSpan(const BlockStore& store, const std::vector<std::string>& hashes);
    ~BlockSpan();
    BlockSpan(const BlockSpan&) = delete;
    BlockSpan& operator=(const BlockSpan&) = delete;

    std::uint64_t size() const noexcept { return size_; }
    // Up to buf.size() bytes at offset; 0 at the end. Throws BlockError(io).
    std::size_t read(std::uint64_t offset, std::span<char> buf);

    struct Part {
        std::string hash;
        std::uint64_t offset = 0;
        std::uint64_t size = 0;
    };
    const std::vector<Part>& parts() const noexcept { return parts_; }

private:
    int fd_for(std::size_t index);

    const BlockStore& store_;
    std::vector<Part> parts_;
    std::uint64_t size_ = 0;
    std::size_t open_index_ = 0;
    int open_fd_ = -1;
};

// True when `type` is allowed by the list (empty: everything; "major/*" wildcards).
bool media_type_allowed(const std::vector<std::string>& allowed, std::string_view type);

void add_verify_routes(http::Router& router, const BlockStore& blocks, BlockStore& manifests,
                       VerifyOptions options);

} // namespace strata::blockd

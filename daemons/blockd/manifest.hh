// A stored file's content: the ordered list of its blocks, its size and whole-content
// SHA-256. Manifests are content-addressed too (their id is the SHA-256 of their encoding)
// and live in their own BlockStore under STATE/manifests, so they get the same crash-safe
// writes. Encoding (text, one item per line, versioned):
//   strata-manifest 1
//   size <bytes>
//   sha256 <hex of the whole content>
//   type <media type>          (optional: the Content-Type it is served with)
//   block <hex> <bytes>        (repeated, in order)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::blockd {

struct ManifestBlock {
    std::string sha256;
    std::uint64_t size = 0;
};

struct Manifest {
    std::uint64_t size = 0;
    std::string sha256; // of the whole content: the strong ETag
    std::string type;   // media type; empty: application/octet-stream
    std::vector<ManifestBlock> blocks;

    std::string encode() const;
    // nullopt for anything that is not a well-formed manifest (sizes must add up).
    static std::optional<Manifest> decode(std::string_view text);
};

struct BlockInfo;
class BlockStore;

// Reads and decodes the manifest stored as `info` in the manifests store; nullopt when it is
// gone or damaged. The one place that reads manifest files.
std::optional<Manifest> load_manifest(const BlockStore& manifests, const BlockInfo& info);

} // namespace strata::blockd

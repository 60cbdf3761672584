// The worker's file transfers with blockd, streamed between its socket and local files (a
// source can be far larger than memory): the source comes from GET /v1/content/{id}, each
// output goes up through POST /v1/blobs, which answers its content address.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace strata::transcoded {

class BlockdFiles {
public:
    // target: "unix:/run/strata/blockd.sock" (or a path, or http://host:port).
    // `moving` is called about once a second while bytes move (the fraction done, or -1 when
    // the size is unknown): a long transfer is progress for the daemon's stall watchdog.
    explicit BlockdFiles(std::string target, std::function<void(double)> moving = {});

    // Writes content `id` to `dest`. Throws MediaError: permanent when blockd has no such
    // content (404: the file was deleted) or it exceeds max_bytes; transient for a transport
    // error or any other status.
    void fetch(const std::string& id, const std::filesystem::path& dest,
               std::uint64_t max_bytes) const;
    // Stores `file` as a blob of `media_type`; returns its manifest id (64 hex digits).
    // Throws MediaError (transient) when blockd refuses it or cannot be reached.
    std::string store(const std::filesystem::path& file, const std::string& media_type) const;

private:
    std::string target_;
    std::function<void(double)> moving_;
};

} // namespace strata::transcoded

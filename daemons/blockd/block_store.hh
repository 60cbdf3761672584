// Content-addressed block store of strata-blockd.
//
// A block is at most 4 MiB of bytes, stored once under the lowercase hex SHA-256 of its
// content (dedupe across users and files).
//
// On-disk layout under the store root (STATE, e.g. /var/lib/strata/blocks):
//
//   STATE/blocks/ab/cd/abcd...  one regular file per block, named by its full 64-char hash,
//                               in two levels of fan-out directories taken from the first
//                               four hex characters (65,536 leaf directories).
//   STATE/tmp/<random>.part     blocks being written; never served, removed on open.
//
// Why fan-out files and not packed volumes: one file per block lets the serving path use
// sendfile() on the block's own fd, makes deletion (GC) a plain unlink with no compaction,
// and needs no index that could disagree with the data. Two levels of 256 directories keep
// every directory small: at 10 million blocks a leaf holds ~150 entries, so lookups stay
// fast on ext4 (htree) and xfs (btree dirs) and tools like ls/rsync/du remain usable.
//
// Crash safety: a block is written to STATE/tmp/<random>.part (O_CREAT|O_EXCL, 0640), hashed
// while it is written, fsynced, verified against the expected hash, then renamed to its final
// name and the parent directory is fsynced. rename() is atomic, so a name under blocks/ only
// ever points to complete, verified, durable content: a torn write after kill -9 leaves at
// most a .part file, which the next open of the store removes.
//
// Path traversal is impossible: every public entry point validates the hash (exactly 64
// characters [0-9a-f]) before building any path from it; temp names are generated here.
//
// A store directory is meant to be owned by one process (the daemon): opening it removes
// every leftover .part file, including those of another live writer.
#pragma once

#include "sha256.hh"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strata::blockd {

inline constexpr std::size_t max_block_size = 4 * 1024 * 1024;

enum class ErrorKind {
    invalid_hash,  // not 64 lowercase hex characters
    hash_mismatch, // content hash differs from the expected one
    too_large,     // more than max_block_size bytes
    disk_full,     // ENOSPC / EDQUOT
    io,            // any other system error
};

const char* to_string(ErrorKind k);

class BlockError : public std::runtime_error {
public:
    BlockError(ErrorKind kind, const std::string& msg, int sys_errno = 0)
        : std::runtime_error(msg), kind_(kind), errno_(sys_errno) {}
    ErrorKind kind() const noexcept { return kind_; }
    // errno of the failing system call, 0 when the error is not a system error.
    int sys_errno() const noexcept { return errno_; }

private:
    ErrorKind kind_;
    int errno_;
};

struct PutResult {
    std::string hash;       // lowercase hex SHA-256 of the content
    std::uint64_t size = 0; // content size in bytes
    bool stored = false;    // this call created the block
    bool existed = false;   // the block was already present (nothing written)
};

struct BlockInfo {
    std::string hash;
    std::uint64_t size = 0;
    std::filesystem::path path;
    std::chrono::system_clock::time_point mtime;
};

struct Stats {
    std::uint64_t blocks = 0;
    std::uint64_t bytes = 0;
};

class BlockStore;

// A block whose content is written and whose hash is known, not yet durable or visible.
// install() flushes it (fsync), renames it into place and fsyncs the directory; it touches
// only this block's own file and paths, so it may run on a worker thread while the writer
// goes on receiving. Destroyed without install(): the temp file is removed. Move-only.
class SealedBlock {
public:
    SealedBlock(SealedBlock&& o) noexcept;
    SealedBlock& operator=(SealedBlock&&) = delete;
    SealedBlock(const SealedBlock&) = delete;
    SealedBlock& operator=(const SealedBlock&) = delete;
    ~SealedBlock();

    // Empty until install() when the writer deferred hashing.
    const std::string& hash() const noexcept { return hash_; }
    std::uint64_t size() const noexcept { return size_; }
    // Computes a deferred hash now by reading the block back; also_read (if set) sees those
    // bytes in order. Throws io.
    void hash_now(const std::function<void(std::string_view)>& also_read = {});
    // Hashes the content first if that was deferred. Throws disk_full / io (the temp file
    // is then removed).
    PutResult install();

private:
    friend class BlockWriter;
    SealedBlock(int fd, std::filesystem::path tmp_path, std::filesystem::path blocks_dir,
                std::string hash, std::uint64_t size);

    int fd_ = -1;
    std::filesystem::path tmp_path_;
    std::filesystem::path blocks_dir_;
    std::string hash_;
    std::uint64_t size_ = 0;
};

// Streams one block to a temp file, hashing as it goes. Obtained from BlockStore::writer().
// commit() makes it visible; abort() (or destruction without commit) removes the temp file.
// Move-only. Independent of the BlockStore object's lifetime (it holds its own paths).
class BlockWriter {
public:
    BlockWriter(BlockWriter&& o) noexcept;
    BlockWriter& operator=(BlockWriter&& o) noexcept;
    BlockWriter(const BlockWriter&) = delete;
    BlockWriter& operator=(const BlockWriter&) = delete;
    ~BlockWriter();

    // Appends a chunk. Throws too_large once the total exceeds max_block_size, disk_full or
    // io on write errors; after a throw the writer is aborted (temp file removed).
    void append(std::string_view chunk);

    // Finishes the block. expected_hex empty: accept the computed hash; otherwise it must be
    // a valid hash equal to the computed one (hash_mismatch / invalid_hash, nothing stored).
    // If the block already exists the temp file is dropped: {stored=false, existed=true}.
    PutResult commit(std::string_view expected_hex = {});

    // commit() in two halves: checks the hash now (throws like commit(); the writer is then
    // aborted) and leaves the disk flush to SealedBlock::install(). The writer is spent.
    SealedBlock seal(std::string_view expected_hex = {});

    // Drops the temp file; idempotent.
    void abort() noexcept;

    bool active() const noexcept { return fd_ >= 0; }
    std::uint64_t size() const noexcept { return size_; }

private:
    friend class BlockStore;
    BlockWriter(std::filesystem::path blocks_dir, std::filesystem::path tmp_path, int fd);

    std::filesystem::path blocks_dir_;
    std::filesystem::path tmp_path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::uint64_t flushed_ = 0; // bytes handed to writeback with sync_file_range
    bool defer_hash_ = false;
    Sha256 hash_;
};

class BlockStore {
public:
    // Creates root, root/blocks and root/tmp as needed (mode 0750) and removes leftover
    // root/tmp/*.part files. Throws BlockError(io) when the directories cannot be created.
    explicit BlockStore(std::filesystem::path root);

    const std::filesystem::path& root() const noexcept { return root_; }

    // Stores data under expected_hex. The content is hashed in memory first, so a mismatch
    // or an existing block never touches the disk. Idempotent. Throws invalid_hash,
    // too_large, hash_mismatch, disk_full, io.
    PutResult put(std::string_view expected_hex, std::string_view data);

    // Starts a streaming write (creates the temp file). Throws disk_full / io.
    // defer_hash: do not hash while appending; SealedBlock::install() reads the block back
    // and hashes it then (on a worker thread), so the receiving thread only copies bytes.
    // Such a writer cannot check an expected hash.
    BlockWriter writer(bool defer_hash = false);

    // Queries. All of these throw BlockError(invalid_hash) for a malformed hash.
    bool has(std::string_view hex) const;
    // The hashes of `hexes` that are not stored, in input order (duplicates kept once).
    std::vector<std::string> missing(const std::vector<std::string>& hexes) const;
    std::optional<BlockInfo> stat(std::string_view hex) const;
    // Read-only O_CLOEXEC fd of the block (for sendfile); -1 when the block is absent.
    // The caller closes it. Throws io for errors other than ENOENT.
    int open_read(std::string_view hex) const;
    // Re-hashes the stored file: true when present and its content matches its name.
    bool verify(std::string_view hex) const;
    // Removes the block; false when it was not present.
    bool remove(std::string_view hex);

    // Walks the tree: calls cb for every block file with a valid name in the right fan-out
    // directory (other entries are ignored). Not a snapshot: concurrent puts/removes may or
    // may not be seen.
    void for_each(const std::function<void(const BlockInfo&)>& cb) const;
    Stats stats() const;

    // Final path of a (valid) hash: root/blocks/ab/cd/<hex>. Throws invalid_hash.
    std::filesystem::path block_path(std::string_view hex) const;

private:
    std::filesystem::path root_;
    std::filesystem::path blocks_dir_;
    std::filesystem::path tmp_dir_;
};

} // namespace strata::blockd

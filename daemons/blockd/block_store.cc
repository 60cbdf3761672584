#include "block_store.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace strata::blockd {

namespace fs = std::filesystem;

const char* to_string(ErrorKind k) {
    switch (k) {
    case ErrorKind::invalid_hash:
        return "invalid_hash";
    case ErrorKind::hash_mismatch:
        return "hash_mismatch";
    case ErrorKind::too_large:
        return "too_large";
    case ErrorKind::disk_full:
        return "disk_full";
    case ErrorKind::io:
        return "io";
    }
    return "unknown";
}

namespace {

[[noreturn]] void throw_sys(const std::string& what, const fs::path& path, int err) {
    ErrorKind kind = (err == ENOSPC || err == EDQUOT) ? ErrorKind::disk_full : ErrorKind::io;
    throw BlockError(kind, "block store: " + what + " " + path.string() + ": " + std::strerror(err),
                     err);
}

void check_hash(std::string_view hex) {
    if (!is_valid_hash(hex)) {
        // Do not echo arbitrary (possibly huge or binary) input back in full.
        std::string shown(hex.substr(0, 80));
        for (char& c : shown)
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
                c = '?';
        throw BlockError(ErrorKind::invalid_hash,
                         "invalid block hash '" + shown +
                             "': expected 64 lowercase hex characters (SHA-256)");
    }
}

[[noreturn]] void throw_too_large(std::uint64_t size) {
    throw BlockError(ErrorKind::too_large, "block of " + std::to_string(size) +
                                               " bytes exceeds the maximum of " +
                                               std::to_string(max_block_size) + " bytes");
}

void write_all(int fd, const char* p, std::size_t n, const fs::path& path) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw_sys("write", path, errno);
        }
        if (w == 0) throw_sys("write", path, EIO);
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_sys("open directory", dir, errno);
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        throw_sys("fsync directory", dir, e);
    }
    ::close(fd);
}

// mkdir dir (0750) if absent; when created, fsync its parent so the entry is durable.
void ensure_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0750) == 0) {
        fsync_dir(dir.parent_path());
        return;
    }
    if (errno != EEXIST) throw_sys("mkdir", dir, errno);
}

std::string random_part_name() {
    unsigned char buf[12];
    std::size_t got = 0;
    while (got < sizeof buf) {
        ssize_t r = ::getrandom(buf + got, sizeof buf - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw_sys("getrandom", "", errno);
        }
        got += static_cast<std::size_t>(r);
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (unsigned char c : buf) {
        s += digits[c >> 4];
        s += digits[c & 0x0f];
    }
    return s + ".part";
}

std::pair<fs::path, int> create_temp(const fs::path& tmp_dir) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        fs::path p = tmp_dir / random_part_name();
        int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd >= 0) return {p, fd};
        if (errno != EEXIST) throw_sys("create", p, errno);
    }
    throw BlockError(ErrorKind::io,
                     "block store: cannot create a unique temp file in " + tmp_dir.string());
}

fs::path path_for(const fs::path& blocks_dir, std::string_view hex) {
    return blocks_dir / std::string(hex.substr(0, 2)) / std::string(hex.substr(2, 2)) /
           std::string(hex);
}

bool exists_regular(const fs::path& p) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) return S_ISREG(st.st_mode);
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_sys("stat", p, errno);
}

// A block that is stored again counts as new for garbage collection: refreshing its mtime
// keeps it inside the grace period while the upload that reuses it is still in flight.
void touch(const fs::path& p) {
    if (::utimensat(AT_FDCWD, p.c_str(), nullptr, 0) != 0 && errno != ENOENT)
        throw_sys("utimensat", p, errno);
}

// Moves tmp (open as fd, always closed here) into place as hex after an fsync. A block that
// already exists needs no flush: the temp file is dropped and the old one's mtime refreshed.
// On any error the temp file is removed and the error rethrown.
PutResult install(int fd, const fs::path& tmp, const fs::path& blocks_dir, const std::string& hex,
                  std::uint64_t size) {
    try {
        fs::path final_path = path_for(blocks_dir, hex);
        if (exists_regular(final_path)) {
            ::close(std::exchange(fd, -1));
            ::unlink(tmp.c_str());
            touch(final_path);
            return {hex, size, false, true};
        }
        if (::fsync(fd) != 0) throw_sys("fsync", tmp, errno);
        int c = ::close(std::exchange(fd, -1));
        if (c != 0 && errno != EINTR) throw_sys("close", tmp, errno);
        fs::path l2 = final_path.parent_path();
        ensure_dir(l2.parent_path());
        ensure_dir(l2);
        if (::rename(tmp.c_str(), final_path.c_str()) != 0) throw_sys("rename", final_path, errno);
        fsync_dir(l2);
        return {hex, size, true, false};
    } catch (...) {
        if (fd >= 0) ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
}

// SHA-256 of the first `size` bytes of fd, read back (from the page cache, normally).
std::string hash_file(int fd, std::uint64_t size, const fs::path& path,
                      const std::function<void(std::string_view)>& also) {
    Sha256 h;
    std::vector<char> buf(1 << 20);
    std::uint64_t done = 0;
    while (done < size) {
        std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
        ssize_t got = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw_sys("read", path, errno);
        if (got == 0) throw_sys("read", path, EIO); // shorter than written: damaged
        h.update(buf.data(), static_cast<std::size_t>(got));
        if (also) also(std::string_view(buf.data(), static_cast<std::size_t>(got)));
        done += static_cast<std::uint64_t>(got);
    }
    return to_hex(h.finish());
}

std::chrono::system_clock::time_point to_time_point(const struct timespec& ts) {
    auto d = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(d));
}

bool is_hex2(const std::string& s) {
    return s.size() == 2 && is_valid_hash(s + std::string(62, '0'));
}

} // namespace

// ---- BlockWriter ----

BlockWriter::BlockWriter(fs::path blocks_dir, fs::path tmp_path, int fd)
    : blocks_dir_(std::move(blocks_dir)), tmp_path_(std::move(tmp_path)), fd_(fd) {}

BlockWriter::BlockWriter(BlockWriter&& o) noexcept
    : blocks_dir_(std::move(o.blocks_dir_)), tmp_path_(std::move(o.tmp_path_)),
      fd_(std::exchange(o.fd_, -1)), size_(o.size_), flushed_(o.flushed_),
      defer_hash_(o.defer_hash_), hash_(std::move(o.hash_)) {}

BlockWriter& BlockWriter::operator=(BlockWriter&& o) noexcept {
    if (this != &o) {
        abort();
        blocks_dir_ = std::move(o.blocks_dir_);
        tmp_path_ = std::move(o.tmp_path_);
        fd_ = std::exchange(o.fd_, -1);
        size_ = o.size_;
        flushed_ = o.flushed_;
        defer_hash_ = o.defer_hash_;
        hash_ = std::move(o.hash_);
    }
    return *this;
}

BlockWriter::~BlockWriter() {
    abort();
}

void BlockWriter::abort() noexcept {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
}

void BlockWriter::append(std::string_view chunk) {
    if (fd_ < 0) throw BlockError(ErrorKind::io, "block writer: append after commit or abort");
    if (size_ + chunk.size() > max_block_size) {
        std::uint64_t total = size_ + chunk.size();
        abort();
        throw_too_large(total);
    }
    try {
        write_all(fd_, chunk.data(), chunk.size(), tmp_path_);
    } catch (...) {
        abort();
        throw;
    }
    if (!defer_hash_) hash_.update(chunk);
    size_ += chunk.size();
    // Start writeback of each full MiB now (asynchronous, never blocks on the disk), so the
    // fsync in commit() finds little left to write and disk time overlaps with receiving.
    constexpr std::uint64_t kick = 1 << 20;
    if (size_ - flushed_ >= kick) {
        std::uint64_t upto = size_ - size_ % kick;
        ::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(upto - flushed_),
                          SYNC_FILE_RANGE_WRITE);
        flushed_ = upto;
    }
}

PutResult BlockWriter::commit(std::string_view expected_hex) {
    return seal(expected_hex).install();
}

SealedBlock BlockWriter::seal(std::string_view expected_hex) {
    if (fd_ < 0) throw BlockError(ErrorKind::io, "block writer: commit after commit or abort");
    if (!expected_hex.empty() && !is_valid_hash(expected_hex)) {
        abort();
        check_hash(expected_hex); // throws invalid_hash
    }
    if (defer_hash_ && !expected_hex.empty()) {
        abort();
        throw BlockError(ErrorKind::io, "block writer: an expected hash needs hashing on write");
    }
    std::string got = defer_hash_ ? std::string() : to_hex(hash_.finish());
    if (!expected_hex.empty() && got != expected_hex) {
        abort();
        throw BlockError(ErrorKind::hash_mismatch, "block content hash " + got +
                                                       " does not match expected " +
                                                       std::string(expected_hex));
    }
    return SealedBlock(std::exchange(fd_, -1), std::move(tmp_path_), std::move(blocks_dir_),
                       std::move(got), size_);
}

// ---- SealedBlock ----

SealedBlock::SealedBlock(int fd, fs::path tmp_path, fs::path blocks_dir, std::string hash,
                         std::uint64_t size)
    : fd_(fd), tmp_path_(std::move(tmp_path)), blocks_dir_(std::move(blocks_dir)),
      hash_(std::move(hash)), size_(size) {}

SealedBlock::SealedBlock(SealedBlock&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), tmp_path_(std::move(o.tmp_path_)),
      blocks_dir_(std::move(o.blocks_dir_)), hash_(std::move(o.hash_)), size_(o.size_) {}

SealedBlock::~SealedBlock() {
    if (fd_ < 0) return;
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
}

void SealedBlock::hash_now(const std::function<void(std::string_view)>& also_read) {
    if (fd_ < 0) throw BlockError(ErrorKind::io, "sealed block: already installed");
    if (hash_.empty()) hash_ = hash_file(fd_, size_, tmp_path_, also_read);
}

PutResult SealedBlock::install() {
    if (fd_ < 0) throw BlockError(ErrorKind::io, "sealed block: installed twice");
    if (hash_.empty()) hash_ = hash_file(fd_, size_, tmp_path_, {});
    return blockd::install(std::exchange(fd_, -1), tmp_path_, blocks_dir_, hash_, size_);
}

// ---- BlockStore ----

BlockStore::BlockStore(fs::path root)
    : root_(std::move(root)), blocks_dir_(root_ / "blocks"), tmp_dir_(root_ / "tmp") {
    std::error_code ec;
    fs::create_directories(root_, ec);
    if (ec) throw_sys("create directory", root_, ec.value());
    ensure_dir(blocks_dir_);
    ensure_dir(tmp_dir_);

    // Remove torn writes left by a crash: they were never visible under blocks/.
    for (fs::directory_iterator it(tmp_dir_, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        if (p.extension() == ".part") ::unlink(p.c_str());
    }
    if (ec) throw_sys("list", tmp_dir_, ec.value());
}

fs::path BlockStore::block_path(std::string_view hex) const {
    check_hash(hex);
    return path_for(blocks_dir_, hex);
}

PutResult BlockStore::put(std::string_view expected_hex, std::string_view data) {
    check_hash(expected_hex);
    if (data.size() > max_block_size) throw_too_large(data.size());
    std::string got = sha256_hex(data);
    if (got != expected_hex)
        throw BlockError(ErrorKind::hash_mismatch, "block content hash " + got +
                                                       " does not match expected " +
                                                       std::string(expected_hex));
    if (exists_regular(path_for(blocks_dir_, got))) {
        touch(path_for(blocks_dir_, got));
        return {got, data.size(), false, true};
    }

    auto [tmp, fd] = create_temp(tmp_dir_);
    try {
        write_all(fd, data.data(), data.size(), tmp);
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    return install(fd, tmp, blocks_dir_, got, data.size());
}

BlockWriter BlockStore::writer(bool defer_hash) {
    auto [tmp, fd] = create_temp(tmp_dir_);
    BlockWriter w(blocks_dir_, std::move(tmp), fd);
    w.defer_hash_ = defer_hash;
    return w;
}

bool BlockStore::has(std::string_view hex) const {
    return exists_regular(block_path(hex));
}

std::vector<std::string> BlockStore::missing(const std::vector<std::string>& hexes) const {
    for (const auto& h : hexes)
        check_hash(h); // all-or-nothing validation
    std::vector<std::string> out;
    for (const auto& h : hexes) {
        if (has(h)) continue;
        bool dup = false;
        for (const auto& o : out)
            if (o == h) {
                dup = true;
                break;
            }
        if (!dup) out.push_back(h);
    }
    return out;
}

std::optional<BlockInfo> BlockStore::stat(std::string_view hex) const {
    fs::path p = block_path(hex);
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
        throw_sys("stat", p, errno);
    }
    if (!S_ISREG(st.st_mode)) return std::nullopt;
    return BlockInfo{std::string(hex), static_cast<std::uint64_t>(st.st_size), p,
                     to_time_point(st.st_mtim)};
}

int BlockStore::open_read(std::string_view hex) const {
    fs::path p = block_path(hex);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) return fd;
    if (errno == ENOENT || errno == ENOTDIR) return -1;
    throw_sys("open", p, errno);
}

bool BlockStore::verify(std::string_view hex) const {
    int fd = open_read(hex);
    if (fd < 0) return false;
    Sha256 h;
    std::string buf(1 << 16, '\0');
    for (;;) {
        ssize_t r = ::read(fd, buf.data(), buf.size());
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            throw_sys("read", block_path(hex), e);
        }
        if (r == 0) break;
        h.update(buf.data(), static_cast<std::size_t>(r));
    }
    ::close(fd);
    return to_hex(h.finish()) == hex;
}

bool BlockStore::remove(std::string_view hex) {
    fs::path p = block_path(hex);
    if (::unlink(p.c_str()) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return false;
        throw_sys("unlink", p, errno);
    }
    fsync_dir(p.parent_path());
    return true;
}

void BlockStore::for_each(const std::function<void(const BlockInfo&)>& cb) const {
    std::error_code ec;
    for (fs::directory_iterator l1(blocks_dir_, ec), end; !ec && l1 != end; l1.increment(ec)) {
        std::string n1 = l1->path().filename().string();
        if (!is_hex2(n1)) continue;
        std::error_code ec2;
        for (fs::directory_iterator l2(l1->path(), ec2); !ec2 && l2 != end; l2.increment(ec2)) {
            std::string n2 = l2->path().filename().string();
            if (!is_hex2(n2)) continue;
            std::error_code ec3;
            for (fs::directory_iterator f(l2->path(), ec3); !ec3 && f != end; f.increment(ec3)) {
                std::string name = f->path().filename().string();
                if (!is_valid_hash(name) || name.compare(0, 2, n1) != 0 ||
                    name.compare(2, 2, n2) != 0)
                    continue;
                struct stat st;
                if (::lstat(f->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
                cb(BlockInfo{name, static_cast<std::uint64_t>(st.st_size), f->path(),
                             to_time_point(st.st_mtim)});
            }
        }
    }
    if (ec) throw_sys("list", blocks_dir_, ec.value());
}

Stats BlockStore::stats() const {
    Stats s;
    for_each([&](const BlockInfo& b) {
        ++s.blocks;
        s.bytes += b.size;
    });
    return s;
}

} // namespace strata::blockd

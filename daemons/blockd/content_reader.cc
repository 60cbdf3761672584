#include "content_reader.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <unistd.h>

namespace strata::blockd {

ContentReader::ContentReader(const BlockStore& store, Manifest manifest)
    : store_(store), manifest_(std::move(manifest)) {
    std::uint64_t at = 0;
    for (const auto& b : manifest_.blocks) {
        block_starts_.push_back(at);
        at += b.size;
    }
    fds_.assign(manifest_.blocks.size(), -1);
}

ContentReader::~ContentReader() {
    for (int fd : fds_)
        if (fd >= 0) close(fd);
}

void ContentReader::add_literal(std::string text) {
    std::uint64_t n = text.size();
    segments_.push_back({size_, n, std::move(text), 0, false});
    size_ += n;
}

void ContentReader::add_range(std::uint64_t first, std::uint64_t last) {
    if (last < first || last >= manifest_.size) throw std::out_of_range("range outside content");
    std::uint64_t n = last - first + 1;
    segments_.push_back({size_, n, {}, first, true});
    size_ += n;
}

std::size_t ContentReader::read_content(std::uint64_t offset, char* out, std::size_t max) {
    auto it = std::upper_bound(block_starts_.begin(), block_starts_.end(), offset);
    std::size_t i = static_cast<std::size_t>(it - block_starts_.begin()) - 1;
    std::uint64_t within = offset - block_starts_[i];
    std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(max, manifest_.blocks[i].size - within));
    if (fds_[i] < 0) {
        fds_[i] = store_.open_read(manifest_.blocks[i].sha256);
        if (fds_[i] < 0)
            throw std::runtime_error("block " + manifest_.blocks[i].sha256 + " missing");
    }
    ssize_t got = pread(fds_[i], out, n, static_cast<off_t>(within));
    if (got <= 0) // a short block file means the store is damaged: abort the response
        throw std::runtime_error("cannot read block " + manifest_.blocks[i].sha256 + ": " +
                                 (got < 0 ? std::strerror(errno) : "truncated"));
    return static_cast<std::size_t>(got);
}

std::size_t ContentReader::read(std::uint64_t offset, std::span<char> buf) {
    std::size_t done = 0;
    auto seg = std::upper_bound(segments_.begin(), segments_.end(), offset,
                                [](std::uint64_t o, const Segment& s) { return o < s.start; });
    if (seg == segments_.begin()) return 0;
    --seg;
    while (done < buf.size() && seg != segments_.end() && offset < size_) {
        std::uint64_t within = offset - seg->start;
        std::size_t want = static_cast<std::size_t>(
            std::min<std::uint64_t>(buf.size() - done, seg->length - within));
        std::size_t got;
        if (seg->is_content) {
            got = read_content(seg->content_from + within, buf.data() + done, want);
        } else {
            std::memcpy(buf.data() + done, seg->literal.data() + within, want);
            got = want;
        }
        done += got;
        offset += got;
        if (offset >= seg->start + seg->length) ++seg;
    }
    return done;
}

} // namespace strata::blockd

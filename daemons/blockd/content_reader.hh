// Reads a stored file's bytes across its blocks, for responses: whole content, one range,
// or a multipart/byteranges body (literal part headers between content ranges).
#pragma once

#include "block_store.hh"
#include "http/message.hh"
#include "manifest.hh"

#include <cstdint>
#include <string>
#include <vector>

namespace strata::blockd {

class ContentReader : public http::BodyReader {
public:
    ContentReader(const BlockStore& store, Manifest manifest);
    ~ContentReader() override;
    ContentReader(const ContentReader&) = delete;
    ContentReader& operator=(const ContentReader&) = delete;

    // Builds the body from pieces, in order.
    void add_literal(std::string text);
    void add_range(std::uint64_t first, std::uint64_t last); // content offsets, inclusive

    std::uint64_t size() const override { return size_; }
    std::size_t read(std::uint64_t offset, std::span<char> buf) override;

private:
    struct Segment {
        std::uint64_t start; // offset in the body
        std::uint64_t length;
        std::string literal;        // when not content
        std::uint64_t content_from; // content offset, for content segments
        bool is_content;
    };
    // Reads content bytes at a content offset, never crossing a block.
    std::size_t read_content(std::uint64_t offset, char* out, std::size_t max);

    const BlockStore& store_;
    Manifest manifest_;
    std::vector<std::uint64_t> block_starts_;
    std::vector<int> fds_; // opened lazily, closed in the destructor
    std::vector<Segment> segments_;
    std::uint64_t size_ = 0;
};

} // namespace strata::blockd

#include "mp4_boxes.hh"

#include <cstdint>
#include <cstring>
#include <fstream>

namespace strata::transcoded {

bool mp4_cut_before_index(const std::filesystem::path& file) {
    std::error_code ec;
    const std::uint64_t size = std::filesystem::file_size(file, ec);
    std::ifstream in(file, std::ios::binary);
    if (ec || !in) return false;
    auto be = [](const unsigned char* p, int n) {
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i)
            v = v << 8 | p[i];
        return v;
    };
    std::uint64_t at = 0;
    for (int box = 0; at + 8 <= size; ++box) {
        unsigned char head[16];
        in.seekg(std::streamoff(at));
        if (!in.read(reinterpret_cast<char*>(head), 8)) return false;
        if (box == 0 && std::memcmp(head + 4, "ftyp", 4) != 0) return false; // not an MP4
        if (std::memcmp(head + 4, "moov", 4) == 0) return false;
        std::uint64_t length = be(head, 4);
        if (length == 1) { // a 64-bit size follows
            if (!in.read(reinterpret_cast<char*>(head + 8), 8)) return false;
            length = be(head + 8, 8);
        } else if (length == 0) {
            length = size - at; // to the end of the file
        }
        if (length < 8) return false; // not boxes after all: leave it to the demuxer
        if (length > size - at) return true;
        at += length;
    }
    return at == size && size > 0; // every box read, none of them a moov
}

} // namespace strata::transcoded

// Magic numbers of the formats strata-transcoded accepts. The name of the file never counts:
// uploads are untrusted and a ".mp4" may be anything.
#include "sniff.hh"

#include <cstring>
#include <fstream>

namespace strata::transcoded {

namespace {

bool has(std::span<const std::uint8_t> b, std::size_t at, const char* magic, std::size_t n) {
    return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
}

std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at) {
    return std::uint32_t(b[at]) << 24 | std::uint32_t(b[at + 1]) << 16 |
           std::uint32_t(b[at + 2]) << 8 | b[at + 3];
}

// An ISO BMFF (MP4, MOV) file starts with a box: a 32-bit size then its type. Files from old
// QuickTime writers may start with moov, mdat, free or wide rather than ftyp. The size must be
// one a box can have (0: to the end, 1: a 64-bit size follows, else at least its own header).
bool iso_box_start(std::span<const std::uint8_t> b) {
    if (b.size() < 8) return false;
    std::uint32_t size = be32(b, 0);
    if (size != 0 && size != 1 && size < 8) return false;
    for (const char* type : {"ftyp", "moov", "mdat", "free", "wide"})
        if (has(b, 4, type, 4)) return true;
    return false;
}

} // namespace

const char* format_name(MediaFormat f) {
    switch (f) {
    case MediaFormat::unknown:
        return "unknown";
    case MediaFormat::empty:
        return "empty";
    case MediaFormat::jpeg:
        return "jpeg";
    case MediaFormat::png:
        return "png";
    case MediaFormat::webp:
        return "webp";
    case MediaFormat::gif:
        return "gif";
    case MediaFormat::mp4:
        return "mp4";
    case MediaFormat::matroska:
        return "matroska";
    case MediaFormat::mpegts:
        return "mpegts";
    case MediaFormat::avi:
        return "avi";
    case MediaFormat::ogg:
        return "ogg";
    }
    return "unknown";
}

bool is_image_format(MediaFormat f) {
    return f == MediaFormat::jpeg || f == MediaFormat::png || f == MediaFormat::webp ||
           f == MediaFormat::gif;
}

MediaFormat sniff_bytes(std::span<const std::uint8_t> b) {
    if (b.empty()) return MediaFormat::empty;
    if (has(b, 0, "\xFF\xD8\xFF", 3)) return MediaFormat::jpeg;
    if (has(b, 0, "\x89PNG\r\n\x1A\n", 8)) return MediaFormat::png;
    if (has(b, 0, "GIF87a", 6) || has(b, 0, "GIF89a", 6)) return MediaFormat::gif;
    if (has(b, 0, "RIFF", 4) && has(b, 8, "WEBP", 4)) return MediaFormat::webp;
    if (has(b, 0, "RIFF", 4) && has(b, 8, "AVI ", 4)) return MediaFormat::avi;
    if (has(b, 0, "\x1A\x45\xDF\xA3", 4)) return MediaFormat::matroska;
    if (has(b, 0, "OggS", 4)) return MediaFormat::ogg;
    if (iso_box_start(b)) return MediaFormat::mp4;
    // One sync byte could be chance; two, a packet apart, are a transport stream.
    if (b.size() > 188 && b[0] == 0x47 && b[188] == 0x47) return MediaFormat::mpegts;
    return MediaFormat::unknown;
}

MediaFormat sniff_format(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw MediaError("cannot open " + file.string(), false);
    std::uint8_t head[sniff_prefix_bytes];
    in.read(reinterpret_cast<char*>(head), sizeof head);
    if (in.bad()) throw MediaError("cannot read " + file.string(), false);
    return sniff_bytes(std::span(head, static_cast<std::size_t>(in.gcount())));
}

} // namespace strata::transcoded

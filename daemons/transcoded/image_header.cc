// Header parsers for JPEG (SOFn, APP1 EXIF), PNG (IHDR, tRNS, eXIf), WebP (VP8, VP8L, VP8X,
// EXIF) and GIF (logical screen, first graphic control extension). Every offset is checked
// against the span before it is read; sizes from the file are compared, never added blindly.
#include "image_header.hh"

#include <cstring>
#include <string>

namespace strata::transcoded {

namespace {

using Bytes = std::span<const std::uint8_t>;

[[noreturn]] void bad(MediaFormat f, const std::string& why) {
    throw MediaError(std::string("invalid ") + format_name(f) + " image: " + why);
}

bool fits(Bytes b, std::size_t at, std::size_t n) {
    return at <= b.size() && n <= b.size() - at;
}
bool has(Bytes b, std::size_t at, const char* magic, std::size_t n) {
    return fits(b, at, n) && std::memcmp(b.data() + at, magic, n) == 0;
}
unsigned be16(Bytes b, std::size_t at) {
    return unsigned(b[at]) << 8 | b[at + 1];
}
unsigned le16(Bytes b, std::size_t at) {
    return unsigned(b[at + 1]) << 8 | b[at];
}
std::uint32_t be32(Bytes b, std::size_t at) {
    return std::uint32_t(be16(b, at)) << 16 | be16(b, at + 2);
}
std::uint32_t le32(Bytes b, std::size_t at) {
    return std::uint32_t(le16(b, at + 2)) << 16 | le16(b, at);
}
unsigned le24(Bytes b, std::size_t at) {
    return unsigned(b[at + 2]) << 16 | le16(b, at);
}

// EXIF payloads come with or without the "Exif\0\0" preamble depending on the container.
unsigned exif_payload_orientation(Bytes payload) {
    if (has(payload, 0, "Exif\0\0", 6)) payload = payload.subspan(6);
    return tiff_orientation(payload);
}

bool is_sof(unsigned marker) {
    // SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC).
    return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

ImageHeader jpeg(Bytes b) {
    constexpr auto f = MediaFormat::jpeg;
    ImageHeader h{f};
    std::size_t at = 2; // after SOI
    for (;;) {
        if (!fits(b, at, 2)) bad(f, "truncated before its frame header");
        if (b[at] != 0xFF) bad(f, "segment does not start with a marker");
        while (fits(b, at + 1, 1) && b[at + 1] == 0xFF)
            ++at; // fill bytes
        if (!fits(b, at, 2)) bad(f, "truncated before its frame header");
        unsigned marker = b[at + 1];
        at += 2;
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue; // no length
        if (marker == 0xD9 || marker == 0xDA || marker == 0xD8)
            bad(f, "no frame header before the image data");
        if (!fits(b, at, 2)) bad(f, "truncated segment");
        std::size_t length = be16(b, at);
        if (length < 2) bad(f, "segment length below 2");
        if (!fits(b, at, length)) bad(f, "truncated segment");
        Bytes body = b.subspan(at + 2, length - 2);
        if (marker == 0xE1 && h.orientation == 1 && has(body, 0, "Exif\0\0", 6))
            h.orientation = exif_payload_orientation(body);
        if (is_sof(marker)) {
            if (body.size() < 6) bad(f, "frame header too short");
            h.height = be16(body, 1);
            h.width = be16(body, 3);
            unsigned components = body[5];
            if (components != 1 && components != 3 && components != 4)
                bad(f, std::to_string(components) + " colour components");
            h.frame_end = at + length;
            return h;
        }
        at += length;
    }
}

ImageHeader png(Bytes b) {
    constexpr auto f = MediaFormat::png;
    ImageHeader h{f};
    // Signature (8), then IHDR: length 13, "IHDR", width, height, depth, colour type, ...
    if (!fits(b, 8, 8 + 13) || be32(b, 8) != 13 || !has(b, 12, "IHDR", 4)) bad(f, "no IHDR chunk");
    std::uint32_t w = be32(b, 16), hgt = be32(b, 20);
    if (w > 0x7FFFFFFFu || hgt > 0x7FFFFFFFu) bad(f, "dimensions out of range");
    h.width = w;
    h.height = hgt;
    unsigned depth = b[24], colour = b[25];
    bool depth_ok = false;
    switch (colour) {
    case 0:
        depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
        break;
    case 3:
        depth_ok = depth == 1 || depth == 2 || depth == 4 || depth == 8;
        break;
    case 2:
    case 4:
    case 6:
        depth_ok = depth == 8 || depth == 16;
        break;
    default:
        bad(f, "colour type " + std::to_string(colour));
    }
    if (!depth_ok) bad(f, "bit depth " + std::to_string(depth));
    h.alpha = colour == 4 || colour == 6;
    // Chunks before the image data: tRNS makes a colour transparent, eXIf holds EXIF. What
    // lies beyond the prefix is left to the decoder.
    std::size_t at = 8 + 12 + 13;
    while (fits(b, at, 8)) {
        std::uint32_t length = be32(b, at);
        if (length > 0x7FFFFFFFu) bad(f, "chunk length out of range");
        if (has(b, at + 4, "IDAT", 4) || has(b, at + 4, "IEND", 4)) break;
        if (has(b, at + 4, "tRNS", 4)) h.alpha = true;
        if (has(b, at + 4, "eXIf", 4) && fits(b, at + 8, length))
            h.orientation = exif_payload_orientation(b.subspan(at + 8, length));
        if (!fits(b, at + 8, std::size_t(length) + 4)) break;
        at += 12 + std::size_t(length);
    }
    return h;
}

ImageHeader webp(Bytes b) {
    constexpr auto f = MediaFormat::webp;
    ImageHeader h{f};
    // "RIFF" size "WEBP", then chunks: fourcc, 32-bit little-endian size, payload (even-padded).
    std::size_t at = 12;
    if (!fits(b, at, 8)) bad(f, "no image chunk");
    std::uint32_t size = le32(b, at + 4);
    Bytes first = b.subspan(at + 8, std::min<std::size_t>(size, b.size() - at - 8));
    if (has(b, at, "VP8 ", 4)) {
        // Frame tag (3 bytes, bit 0 clear on a key frame), start code 9D 01 2A, 14-bit sizes.
        if (first.size() < 10 || (first[0] & 1) || !has(first, 3, "\x9D\x01\x2A", 3))
            bad(f, "invalid VP8 frame header");
        h.width = le16(first, 6) & 0x3FFF;
        h.height = le16(first, 8) & 0x3FFF;
    } else if (has(b, at, "VP8L", 4)) {
        // Signature 0x2F, then 14 bits width - 1, 14 bits height - 1, 1 bit alpha, 3 version.
        if (first.size() < 5 || first[0] != 0x2F) bad(f, "invalid VP8L header");
        std::uint32_t bits = le32(first, 1);
        h.width = (bits & 0x3FFF) + 1;
        h.height = ((bits >> 14) & 0x3FFF) + 1;
        h.alpha = (bits >> 28) & 1;
        if ((bits >> 29) != 0) bad(f, "unknown VP8L version");
    } else if (has(b, at, "VP8X", 4)) {
        // Flags (ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02), 3 reserved bytes,
        // 24-bit canvas width - 1 and height - 1.
        if (first.size() < 10) bad(f, "invalid VP8X header");
        if (first[0] & 0x02) bad(f, "animated WebP is not supported");
        h.alpha = first[0] & 0x10;
        h.width = le24(first, 4) + 1;
        h.height = le24(first, 7) + 1;
        at += 8 + std::size_t(size) + (size & 1);
        while (fits(b, at, 8)) {
            std::uint32_t length = le32(b, at + 4);
            if (has(b, at, "EXIF", 4) && fits(b, at + 8, length)) {
                h.orientation = exif_payload_orientation(b.subspan(at + 8, length));
                break;
            }
            if (!fits(b, at + 8, std::size_t(length) + (length & 1))) break;
            at += 8 + std::size_t(length) + (length & 1);
        }
    } else {
        bad(f, "unknown first chunk");
    }
    return h;
}

ImageHeader gif(Bytes b) {
    constexpr auto f = MediaFormat::gif;
    ImageHeader h{f};
    // Header (6), logical screen: width, height (16-bit little-endian), packed, background,
    // aspect; then the global colour table when the packed byte says so.
    if (!fits(b, 0, 13)) bad(f, "truncated screen descriptor");
    h.width = le16(b, 6);
    h.height = le16(b, 8);
    std::size_t at = 13;
    if (b[10] & 0x80) at += 3u << ((b[10] & 7) + 1);
    // Extensions before the first image: a graphic control extension (21 F9) with its
    // transparency flag makes the first frame transparent.
    while (fits(b, at, 1)) {
        if (b[at] == 0x2C || b[at] == 0x3B) break; // image descriptor, trailer
        if (b[at] != 0x21) bad(f, "unknown block before the first image");
        if (!fits(b, at, 2)) break;
        bool control = b[at + 1] == 0xF9;
        at += 2;
        if (control && fits(b, at, 2) && b[at] == 4) h.alpha = b[at + 1] & 1;
        while (fits(b, at, 1) && b[at] != 0)
            at += 1 + std::size_t(b[at]); // sub-blocks
        at += 1;
    }
    if (fits(b, at, 1) && b[at] == 0x3B) bad(f, "no image before the trailer");
    return h;
}

} // namespace

unsigned tiff_orientation(Bytes t) {
    // Byte order "II" or "MM", 42, the offset of IFD0; IFD0: a count then 12-byte entries
    // (tag, type, count, value). Orientation is a SHORT, count 1, its value inline.
    bool little;
    if (has(t, 0, "II*\0", 4))
        little = true;
    else if (has(t, 0, "MM\0*", 4))
        little = false;
    else
        return 1;
    auto u16 = [&](std::size_t at) { return little ? le16(t, at) : be16(t, at); };
    auto u32 = [&](std::size_t at) { return little ? le32(t, at) : be32(t, at); };
    if (!fits(t, 4, 4)) return 1;
    std::size_t ifd = u32(4);
    if (!fits(t, ifd, 2)) return 1;
    std::size_t count = u16(ifd);
    for (std::size_t i = 0; i < count && fits(t, ifd + 2 + 12 * i, 12); ++i) {
        std::size_t e = ifd + 2 + 12 * i;
        if (u16(e) != 0x0112) continue;
        if (u16(e + 2) != 3 || u32(e + 4) != 1) return 1;
        unsigned v = u16(e + 8);
        return v >= 1 && v <= 8 ? v : 1;
    }
    return 1;
}

Orientation exif_orientation(unsigned value) {
    switch (value) {
    case 2:
        return {0, true}; // mirrored
    case 3:
        return {180, false}; // upside down
    case 4:
        return {180, true}; // mirrored top to bottom
    case 5:
        return {270, true}; // transposed
    case 6:
        return {90, false}; // the usual portrait photo from a phone
    case 7:
        return {90, true}; // transversed
    case 8:
        return {270, false};
    default:
        return {0, false};
    }
}

ImageHeader parse_image_header(MediaFormat format, Bytes head) {
    ImageHeader h;
    switch (format) {
    case MediaFormat::jpeg:
        h = jpeg(head);
        break;
    case MediaFormat::png:
        h = png(head);
        break;
    case MediaFormat::webp:
        h = webp(head);
        break;
    case MediaFormat::gif:
        h = gif(head);
        break;
    default:
        throw MediaError(std::string("not an image: ") + format_name(format));
    }
    if (h.width == 0 || h.height == 0) bad(format, "zero width or height");
    return h;
}

} // namespace strata::transcoded

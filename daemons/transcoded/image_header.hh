// What an image's header says, read without decoding: the dimensions (so a decompression bomb
// is refused before any pixel is allocated), whether it has transparency (which picks the
// output format) and its EXIF orientation. Pure C++ over bytes: the input is untrusted and
// fuzzed (tests/fuzz/fuzz_image_header.cc), so every read is bounds-checked.
#pragma once

#include "media.hh"

#include <cstddef>
#include <cstdint>
#include <span>

namespace strata::transcoded {

// How many leading bytes parse_image_header wants: a JPEG's SOF comes after its APPn
// segments (EXIF up to 64 KiB, ICC profiles split over several), rarely further than this.
inline constexpr std::size_t image_header_prefix_bytes = 1 << 20;

struct ImageHeader {
    MediaFormat format = MediaFormat::unknown;
    unsigned width = 0, height = 0; // as stored, before the orientation is applied
    bool alpha = false;             // an alpha channel or a transparent colour
    unsigned orientation = 1;       // EXIF orientation 1..8; 1 when absent or invalid
    std::size_t frame_end = 0;      // JPEG: offset just past the SOF segment
};

// format: as sniffed (an image format); head: the file's first bytes, up to
// image_header_prefix_bytes. Throws MediaError(permanent) when the header is malformed,
// truncated, unsupported (animated WebP) or gives a zero dimension.
ImageHeader parse_image_header(MediaFormat format, std::span<const std::uint8_t> head);

// The orientation tag (0x0112) of a TIFF structure (an EXIF payload after "Exif\0\0"), or 1.
unsigned tiff_orientation(std::span<const std::uint8_t> tiff);

// What an EXIF orientation does to the stored image to show it upright: first mirror
// left-right (when mirrored), then rotate clockwise. Values outside 1..8 count as 1.
struct Orientation {
    unsigned rotation = 0; // 0, 90, 180, 270
    bool mirrored = false;
};
Orientation exif_orientation(unsigned value);

} // namespace strata::transcoded

// The image pipeline of strata-transcoded: one uploaded picture (JPEG, PNG, WebP, GIF) to a
// display rendition and a square thumbnail, upright and without metadata.
#pragma once

#include "media.hh"

#include <cstdint>
#include <filesystem>
#include <vector>

namespace strata::transcoded {

struct ImageOptions {
    unsigned max_width = 1920, max_height = 1080; // fit inside, never upscale
    unsigned quality = 85;
    unsigned thumbnail_size = 300;         // square, cover crop (centre)
    std::uint64_t max_pixels = 50'000'000; // decompression-bomb limit, checked from the header
                                           // BEFORE decoding
};

struct ImageResult {
    MediaInfo source;
    std::vector<OutputFile> files; // "display" then "thumbnail"
};

// Writes display.jpg|display.webp and thumbnail.jpg|thumbnail.webp into out_dir (which
// exists, empty). Opaque sources give JPEG; sources with transparency (alpha channel, PNG
// tRNS, a GIF's transparent colour) give WebP, so the transparency survives (except for a
// rendition under 16 pixels a side, which webpenc refuses: JPEG, flattened).
// The thumbnail is thumbnail_size square, the centre of the picture; a picture whose short
// side is below thumbnail_size gives a square of its short side (never upscaled).
// Throws MediaError: permanent for bad input (corrupt, truncated, unsupported, too many
// pixels, zero length, not an image); not permanent when a file cannot be read or written.
// Throws std::invalid_argument for options with a zero size.
ImageResult process_image(const std::filesystem::path& input, const std::filesystem::path& out_dir,
                          const ImageOptions& options, const ProgressFn& progress);

} // namespace strata::transcoded

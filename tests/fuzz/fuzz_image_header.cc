// libFuzzer target: an upload's first bytes through the format sniffer and, for images, the
// header parser (dimensions, transparency, EXIF orientation) that guards the decoders. Bad
// bytes are refused with a permanent MediaError; accepted headers have real dimensions and
// a valid orientation; nothing reads out of bounds (ASan).
#include "image_header.hh"
#include "sniff.hh"

#include <cstdint>
#include <cstdlib>
#include <span>

using namespace strata::transcoded;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> in(data, size);
    MediaFormat f = sniff_bytes(in.first(std::min(size, sniff_prefix_bytes)));
    if ((f == MediaFormat::empty) != (size == 0)) std::abort();
    unsigned o = tiff_orientation(in); // the EXIF parser on any bytes, too
    if (o < 1 || o > 8) std::abort();
    Orientation turn = exif_orientation(o);
    if (turn.rotation % 90 != 0 || turn.rotation >= 360) std::abort();
    if (!is_image_format(f)) return 0;
    try {
        ImageHeader h = parse_image_header(f, in);
        if (h.format != f || h.width == 0 || h.height == 0) std::abort();
        if (h.orientation < 1 || h.orientation > 8) std::abort();
        if (h.frame_end > size) std::abort();
    } catch (const MediaError& e) {
        if (!e.permanent) std::abort();
    }
    return 0;
}

#include "video_ladder.hh"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace strata::transcoded {

unsigned even_size(double x) {
    auto n = static_cast<unsigned>(std::lround(x / 2)) * 2;
    return std::max(n, 2u);
}

std::vector<PlannedRung> plan_ladder(const std::vector<Rung>& ladder, unsigned display_width,
                                     unsigned display_height) {
    std::vector<PlannedRung> out;
    if (display_width == 0 || display_height == 0) return out;
    bool portrait = display_height > display_width;
    unsigned short_side = std::min(display_width, display_height);
    double aspect = double(std::max(display_width, display_height)) / short_side;
    auto sized = [&](std::string name, unsigned short_len, unsigned kbps) {
        unsigned s = even_size(short_len), l = even_size(short_len * aspect);
        return PlannedRung{std::move(name), portrait ? s : l, portrait ? l : s, kbps};
    };
    for (const auto& r : ladder)
        if (r.height > 0 && r.height <= short_side)
            out.push_back(sized(r.name, r.height, r.video_kbps));
    if (!out.empty() || ladder.empty()) return out;
    // Smaller than every rung: its own size, with the smallest rung's bits per pixel.
    const Rung& smallest =
        *std::min_element(ladder.begin(), ladder.end(),
                          [](const Rung& a, const Rung& b) { return a.height < b.height; });
    double ratio = double(short_side) * short_side / (double(smallest.height) * smallest.height);
    auto kbps = static_cast<unsigned>(std::max(100.0, std::round(smallest.video_kbps * ratio)));
    // Rounded down to even, so the source is never enlarged, not even by a pixel.
    unsigned s = std::max(2u, short_side & ~1u);
    return {sized(std::to_string(s) + "p", s, kbps)};
}

Size fit_width(unsigned width, unsigned height, unsigned max_width) {
    if (width == 0 || height == 0) return {};
    unsigned w = std::min(width, max_width);
    return {even_size(w), even_size(double(w) * height / width)};
}

unsigned keyframe_interval(double fps, double seconds) {
    if (!(fps > 0)) fps = 30;
    return static_cast<unsigned>(std::max(1L, std::lround(fps * seconds)));
}

std::string avc1_codec(const std::uint8_t* sps, std::size_t size) {
    if (size < 4 || (sps[0] & 0x1f) != 7) return "";
    char text[16];
    std::snprintf(text, sizeof text, "avc1.%02x%02x%02x", sps[1], sps[2], sps[3]);
    return text;
}

std::string avc1_codec_from_annexb(const std::uint8_t* data, std::size_t size) {
    // NAL units follow 00 00 01 start codes (00 00 00 01 ends the same way).
    for (std::size_t i = 0; i + 3 < size; ++i)
        if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1) {
            std::string codec = avc1_codec(data + i + 3, size - i - 3);
            if (!codec.empty()) return codec;
            i += 2;
        }
    return "";
}

} // namespace strata::transcoded

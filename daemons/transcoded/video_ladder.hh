// Which renditions a video gets, and their sizes: pure arithmetic, no GStreamer, so the
// choices are unit-tested on their own (test_video_ladder.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::transcoded {

// One rendition of the ladder as configured: height is the short side of the picture, so a
// portrait phone video's "720p" is 720x1280, with the pixel count (and bitrate) of a
// landscape 720p.
struct Rung {
    std::string name;
    unsigned height;
    unsigned video_kbps;
};

// A rung as it will be encoded for one source: its display size, even numbers.
struct PlannedRung {
    std::string name;
    unsigned width = 0, height = 0;
    unsigned video_kbps = 0;
};

// The rungs for a source of display_width x display_height (after rotation): rungs whose
// short side exceeds the source's are dropped (never upscale); each keeps the source's
// aspect ratio. When the source is smaller than every rung, one rung at the source's own
// size, named "<short side>p", with the smallest rung's bitrate scaled by the pixel count
// (at least 100 kbps): a small source still plays, at a bitrate fit for its size.
std::vector<PlannedRung> plan_ladder(const std::vector<Rung>& ladder, unsigned display_width,
                                     unsigned display_height);

// The nearest even number to x, at least 2 (4:2:0 video needs even sizes).
unsigned even_size(double x);

struct Size {
    unsigned width = 0, height = 0;
};
// width x height scaled to at most max_width wide (never wider than the source), aspect
// kept, even numbers.
Size fit_width(unsigned width, unsigned height, unsigned max_width);

// Frames between keyframes: round(fps * seconds), at least 1; fps 0 (unknown) counts as 30.
unsigned keyframe_interval(double fps, double seconds);

// The RFC 6381 codec of an H.264 stream from its SPS NAL unit (starting with the NAL header
// byte, 0x67): "avc1.PPCCLL" (profile_idc, constraint flags, level_idc in hex); "" when the
// bytes are not an SPS.
std::string avc1_codec(const std::uint8_t* sps, std::size_t size);
// The same, from an Annex B byte stream (x264enc's output): its first SPS.
std::string avc1_codec_from_annexb(const std::uint8_t* data, std::size_t size);

} // namespace strata::transcoded

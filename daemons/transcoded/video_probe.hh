// What a video source holds, read by GstDiscoverer before anything is decoded in full: so a
// file that is not a video, too large or too long is refused at once.
#pragma once

#include "media.hh"

#include <filesystem>
#include <string>

namespace strata::transcoded {

struct VideoProbe {
    MediaInfo info;                             // dimensions as displayed (rotation applied)
    unsigned coded_width = 0, coded_height = 0; // as stored in the stream
    int fps_n = 0, fps_d = 1;                   // 0/1 when the stream does not say
    bool has_audio = false;
    std::string orientation; // the image-orientation tag ("rotate-90", ...) or ""
};

// Throws MediaError: permanent for what is not a playable video (no video stream, a codec
// no decoder handles: "unsupported codec video/x-h265"), transient when the file cannot
// be read or the probe times out.
VideoProbe probe_video(const std::filesystem::path& input, double timeout_seconds = 15);

// The caps a missing-plugin installer detail asks a decoder for:
// "gstreamer|1.0|app|H.265 decoder|decoder-video/x-h265, profile=..." -> "video/x-h265";
// "" when it is not about a decoder.
std::string missing_decoder_caps(const char* installer_detail);

// The image-orientation tag's meaning: degrees clockwise to apply, and a mirror first.
struct Orientation {
    unsigned rotation = 0;
    bool mirrored = false;
};
Orientation parse_orientation(const std::string& tag);
// videoflip's video-direction that makes it upright: "identity", "90r", "ur-ll", ...
const char* flip_direction(Orientation o);

} // namespace strata::transcoded

// What the worker's pipelines share: how a job's media fails, what a pipeline writes, and
// what it learned about the source. The pipelines (image_pipeline.hh, video_pipeline.hh) run
// inside the worker process (strata-transcoded --worker), never in the daemon.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata::transcoded {

// One job's media cannot be processed. permanent: the input itself is bad (corrupt,
// truncated, not media, too large, unsupported codec), so retrying cannot help; otherwise a
// transient failure (disk full, ...) worth a retry.
struct MediaError : std::runtime_error {
    bool permanent;
    explicit MediaError(const std::string& why, bool permanent_failure = true)
        : std::runtime_error(why), permanent(permanent_failure) {}
};

// The container or image format, from the file's first bytes (never from its name).
enum class MediaFormat { unknown, empty, jpeg, png, webp, gif, mp4, matroska, mpegts, avi, ogg };
const char* format_name(MediaFormat f); // "jpeg", "mp4", ...; "unknown", "empty"
bool is_image_format(MediaFormat f);    // jpeg, png, webp, gif
// Reads at most the first 189 bytes (MPEG-TS: a sync byte at 0 and 188); throws
// MediaError(permanent=false) when the file cannot be read; MediaFormat::empty for a
// zero-length file.
MediaFormat sniff_format(const std::filesystem::path& file);

// What the source is, as the renditions' metadata. Dimensions are as displayed: after the
// rotation (EXIF orientation or the video's rotate tag) is applied.
struct MediaInfo {
    MediaFormat format = MediaFormat::unknown;
    unsigned width = 0, height = 0;
    unsigned rotation = 0;       // degrees clockwise applied: 0, 90, 180, 270
    bool mirrored = false;       // EXIF orientations 2, 4, 5, 7
    double duration_seconds = 0; // videos
    std::string video_codec;     // "h264", "vp9", ...; images: "" (format says it)
    std::string audio_codec;     // "" when there is no audio track
    double frame_rate = 0;       // videos, frames per second
};

// One file a pipeline wrote, relative to its output directory.
struct OutputFile {
    std::string rendition;      // which rendition it belongs to: "display", "thumbnail",
                                // "poster", "thumbnails", "hls", "720p", ...
    std::string role;           // "image", "master", "playlist", "segment", "init"
    std::filesystem::path path; // relative to the output directory, e.g. "720p/index.m3u8"
    std::string media_type;     // "image/jpeg", "image/webp", "application/vnd.apple.mpegurl",
                                // "video/mp2t"
    unsigned width = 0, height = 0;
    double start_seconds = 0; // thumbnails and segments: where in the video
    double duration_seconds = 0;
};

// Called often while a pipeline runs (at least every second while it makes progress):
// percent of the whole job in [0, 100], and the stage ("probing", "decoding", "encoding",
// "thumbnails", ...). The worker forwards it; its watchdog kills a worker whose progress
// stops.
using ProgressFn = std::function<void(double percent, const std::string& stage)>;

} // namespace strata::transcoded

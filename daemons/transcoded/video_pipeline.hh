// The video job: one source file to an HLS ladder (H.264 + AAC in MPEG-TS segments), a
// poster frame and scrubbing thumbnails, in one GStreamer pipeline that decodes the source
// once. Runs in the worker process.
#pragma once

#include "media.hh"
#include "video_ladder.hh"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::transcoded {

struct VideoOptions {
    std::vector<Rung> ladder = {
        {"1080p", 1080, 5000}, {"720p", 720, 2800}, {"480p", 480, 1400}, {"360p", 360, 800}};
    unsigned audio_kbps = 128;
    double keyframe_seconds = 2;   // GOP, aligned across rungs; scene-cut keyframes off
    double segment_seconds = 6;    // HLS target duration, a multiple of keyframe_seconds
    double thumbnail_seconds = 10; // one scrubbing thumbnail every N seconds
    unsigned thumbnail_width = 160;
    std::string preset = "veryfast";           // x264 speed preset
    std::uint64_t max_pixels = 3840ull * 2160; // per frame: refuse larger (decompression bomb)
    double max_duration_seconds = 4 * 3600;    // refuse longer
};

struct VideoResult {
    MediaInfo source;
    std::vector<OutputFile> files;
};

// Writes into out_dir (exists, empty): master.m3u8, RUNG/index.m3u8 + RUNG/segNNNNN.ts per
// rung, poster.jpg, thumbs/NNNNN.jpg. Throws MediaError (permanent for bad input).
//
// The rungs are plan_ladder()'s (never upscaled; a source smaller than every rung gets one
// rung of its own size). Too many pixels per frame or too long a duration are refused from
// the probe, before decoding. A damaged source: an MP4 cut before its index (moov) fails at
// once (permanent); one cut in its media (index first) succeeds with what could be decoded,
// the playlists covering that part; an error the demuxer or a decoder reports fails
// (permanent), as does a source where no frame could be decoded. A pipeline making no
// progress for a minute fails (transient). progress is called every quarter second while
// the pipeline runs (not during the probe, which is short and has its own timeout).
VideoResult process_video(const std::filesystem::path& input, const std::filesystem::path& out_dir,
                          const VideoOptions& options, const ProgressFn& progress);

} // namespace strata::transcoded

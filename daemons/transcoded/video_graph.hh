// The video job's GStreamer pipeline, built element by element and run to its end:
//
//   filesrc ! decodebin ! videoconvert ! I420 ! [videoflip] ! tee
//     tee ! queue ! videoscale ! WxH ! x264enc ! h264parse ! hlssink2 (video)   per rung
//     tee ! queue ! videoscale ! jpegenc ! multifilesink thumbs/%05d.jpg        chosen frames
//     tee ! queue ! videoscale ! jpegenc ! multifilesink poster.jpg             chosen frames
//   decodebin ! audioconvert ! audioresample ! avenc_aac ! aacparse ! tee
//     tee ! queue ! hlssink2 (audio)                                            per rung
//
// so the source is decoded once and the audio encoded once.
#pragma once

#include "media.hh"
#include "video_ladder.hh"

#include <filesystem>
#include <string>
#include <vector>

namespace strata::transcoded {

struct VideoGraphPlan {
    std::filesystem::path input, out_dir;
    bool has_audio = false;
    std::string flip = "identity";  // videoflip video-direction
    std::vector<PlannedRung> rungs; // each written to out_dir/NAME/
    std::string preset;
    unsigned keyframe_frames = 60;
    unsigned audio_kbps = 128;
    unsigned segment_seconds = 6;
    Size thumbnail, poster;
    double thumbnail_seconds = 10;
    double poster_at_seconds = 0; // the first frame is kept until this one comes
    double duration_seconds = 0;  // from the probe; 0 when unknown
    double max_duration_seconds = 0;
};

struct VideoGraphResult {
    std::vector<std::string> codecs;     // per rung: "avc1.64001f" from the encoder's SPS
    std::vector<double> thumbnail_times; // thumbs/00000.jpg's time, ...
    double decoded_seconds = 0;          // how far decoding went
};

// Runs the pipeline to EOS, calling progress (percent from 2 to 97, "encoding") every
// quarter second. Throws MediaError: the bus's first error with its element's message,
// "unsupported codec ..." when a decoder is missing, a stall (no frame decoded for 60 s).
VideoGraphResult run_video_graph(const VideoGraphPlan& plan, const ProgressFn& progress);

} // namespace strata::transcoded

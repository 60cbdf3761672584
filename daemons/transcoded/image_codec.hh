// The GStreamer half of the image pipeline: decode one picture (upright), encode one
// rendition of it. Each call runs its own short pipeline, bounded by a deadline, and reports
// failures as MediaError; image_pipeline.cc decides what to make.
#pragma once

#include "image_header.hh"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <gst/gst.h>
#include <memory>
#include <vector>

namespace strata::transcoded {

struct SampleUnref {
    void operator()(GstSample* s) const { gst_sample_unref(s); }
};
using SamplePtr = std::unique_ptr<GstSample, SampleUnref>;

// A decoded frame: I420 for opaque sources, RGBA when the header says it has transparency.
struct Picture {
    SamplePtr sample;
    unsigned width = 0, height = 0; // as displayed: the orientation is applied
};

// Called while a pipeline runs (about ten times a second), so the caller can report progress.
using Tick = std::function<void()>;

// The first frame of input (a GIF's first frame only), with the header's orientation applied.
Picture decode_picture(const std::filesystem::path& input, std::uintmax_t file_size,
                       const ImageHeader& header, std::chrono::seconds timeout, const Tick& tick);

struct Rendition {
    unsigned crop_left = 0, crop_right = 0, crop_top = 0, crop_bottom = 0; // source pixels
    unsigned width = 0, height = 0; // the crop is scaled to this
    bool webp = false;              // else JPEG
    unsigned quality = 85;
};

// The encoded file's bytes. Encoders write no metadata: no EXIF, XMP or ICC.
std::vector<std::uint8_t> encode_picture(const Picture& picture, const Rendition& r,
                                         std::chrono::seconds timeout, const Tick& tick);

} // namespace strata::transcoded

#include "video_graph.hh"

#include "gst_build.hh"
#include "gst_ptr.hh"
#include "video_probe.hh"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <gst/pbutils/pbutils.h>
#include <gst/video/video.h>
#include <memory>
#include <mutex>

namespace strata::transcoded {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto stall_limit = std::chrono::seconds(60);
constexpr auto tick = std::chrono::milliseconds(250);

// What the streaming threads share with the bus loop.
struct Shared {
    GstBin* bin = nullptr;
    GstElement* video_in = nullptr;
    GstElement* audio_in = nullptr; // null when the source has no audio
    std::atomic<bool> video_linked{false}, audio_linked{false};
    std::atomic<gint64> first_pts{-1}; // the first decoded frame's, the origin of times
    std::atomic<gint64> position{0};   // the latest decoded frame, ns past the origin
    // The capsfilters after each videoscale, and the size each keeps.
    std::vector<std::pair<GstElement*, Size>> scaled;
    std::mutex mutex;
    std::vector<double> thumbnail_times;
    std::vector<std::string> codecs;
};

double seconds_of(Shared& s, GstBuffer* b) {
    gint64 first = s.first_pts.load();
    if (!GST_BUFFER_PTS_IS_VALID(b) || first < 0) return -1;
    return double(gint64(GST_BUFFER_PTS(b)) - first) / GST_SECOND;
}

// On the video tee's sink pad: every decoded frame passes here once.
GstPadProbeReturn on_decoded(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto& s = *static_cast<Shared*>(data);
    GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
    if (GST_BUFFER_PTS_IS_VALID(b)) {
        gint64 pts = gint64(GST_BUFFER_PTS(b)), none = -1;
        s.first_pts.compare_exchange_strong(none, pts);
        s.position = std::max(s.position.load(), pts - s.first_pts.load());
    }
    return GST_PAD_PROBE_OK;
}

// On the video tee's sink pad: the decoded caps' colorimetry and chroma siting are copied
// into every scaled branch's caps. Left open, videoscale would pick the default of the new
// size (BT.601 below 720 lines) and convert the colours of every frame, through an RGB
// intermediate: slow, and a colour shift.
GstPadProbeReturn on_caps(GstPad*, GstPadProbeInfo* info, gpointer data) {
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
    GstCaps* caps = nullptr;
    gst_event_parse_caps(event, &caps);
    if (!caps || gst_caps_get_size(caps) == 0) return GST_PAD_PROBE_OK;
    // From the video info, not the caps' fields: a stream that does not say has the
    // defaults of its size, which the output must keep too.
    GstVideoInfo in;
    if (!gst_video_info_from_caps(&in, caps)) return GST_PAD_PROBE_OK;
    GCharPtr colorimetry(gst_video_colorimetry_to_string(&in.colorimetry));
    GCharPtr site(gst_video_chroma_site_to_string(in.chroma_site));
    for (auto [filter, size] : static_cast<Shared*>(data)->scaled) {
        CapsPtr out(gst_caps_new_simple("video/x-raw", "width", G_TYPE_INT, int(size.width),
                                        "height", G_TYPE_INT, int(size.height),
                                        "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, nullptr));
        if (colorimetry)
            gst_caps_set_simple(out.get(), "colorimetry", G_TYPE_STRING, colorimetry.get(),
                                nullptr);
        if (site) gst_caps_set_simple(out.get(), "chroma-site", G_TYPE_STRING, site.get(), nullptr);
        g_object_set(filter, "caps", out.get(), nullptr);
    }
    return GST_PAD_PROBE_OK;
}

// Lets through only the frames the thumbnails or the poster need, so their branches scale
// and encode a handful of frames rather than every one.
struct FramePicker {
    Shared* shared;
    bool thumbnails;   // else the poster
    double interval;   // thumbnails: seconds between two
    double next = 0;   // thumbnails: the next one's time; poster: its time
    bool first = true; // poster: the first frame is written too, in case `next` never comes
};

GstPadProbeReturn on_frame(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto& p = *static_cast<FramePicker*>(data);
    double t = seconds_of(*p.shared, GST_PAD_PROBE_INFO_BUFFER(info));
    if (t < 0) return GST_PAD_PROBE_DROP;
    constexpr double slack = 0.001; // frame times are rounded to the ns
    if (p.thumbnails) {
        if (t + slack < p.next) return GST_PAD_PROBE_DROP;
        p.next = (std::floor((t + slack) / p.interval) + 1) * p.interval;
        std::lock_guard lock(p.shared->mutex);
        p.shared->thumbnail_times.push_back(t);
        return GST_PAD_PROBE_OK;
    }
    if (p.first) {
        p.first = false;
        if (p.next <= 0) p.next = -1; // the first frame is the poster
        return GST_PAD_PROBE_OK;
    }
    if (p.next < 0 || t + slack < p.next) return GST_PAD_PROBE_DROP;
    p.next = -1; // done
    return GST_PAD_PROBE_OK;
}

// On each h264parse's source pad: the first SPS gives the rung's real profile and level.
struct CodecWatch {
    Shared* shared;
    std::size_t rung;
};

GstPadProbeReturn on_encoded(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto& w = *static_cast<CodecWatch*>(data);
    GstMapInfo map;
    std::string codec;
    GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
    if (gst_buffer_map(b, &map, GST_MAP_READ)) {
        codec = avc1_codec_from_annexb(map.data, map.size);
        gst_buffer_unmap(b, &map);
    }
    if (codec.empty()) return GST_PAD_PROBE_OK;
    std::lock_guard lock(w.shared->mutex);
    w.shared->codecs[w.rung] = codec;
    return GST_PAD_PROBE_REMOVE;
}

void on_pad_added(GstElement* decodebin, GstPad* pad, gpointer data) {
    auto& s = *static_cast<Shared*>(data);
    CapsPtr caps(gst_pad_get_current_caps(pad));
    if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
    std::string name = caps && gst_caps_get_size(caps.get())
                           ? gst_structure_get_name(gst_caps_get_structure(caps.get(), 0))
                           : "";
    GstElement* target = nullptr;
    if (name == "video/x-raw" && !s.video_linked.exchange(true))
        target = s.video_in;
    else if (name == "audio/x-raw" && s.audio_in && !s.audio_linked.exchange(true))
        target = s.audio_in;
    if (!target) { // a second video or audio track, subtitles: decoded into nothing
        target = gst_element_factory_make("fakesink", nullptr);
        g_object_set(target, "sync", FALSE, "async", FALSE, nullptr);
        gst_bin_add(s.bin, target);
        gst_element_sync_state_with_parent(target);
    }
    GPtr<GstPad> sink(gst_element_get_static_pad(target, "sink"));
    if (gst_pad_link(pad, sink.get()) != GST_PAD_LINK_OK)
        GST_ELEMENT_ERROR(decodebin, CORE, NEGOTIATION,
                          ("cannot use the decoded stream %s", name.c_str()), (nullptr));
}

// Every track decodebin will expose is out: a track the probe saw but nothing could decode
// would leave the HLS muxers waiting for it, so it is an error now.
void on_no_more_pads(GstElement* decodebin, gpointer data) {
    auto& s = *static_cast<Shared*>(data);
    if (!s.video_linked || (s.audio_in && !s.audio_linked))
        GST_ELEMENT_ERROR(decodebin, STREAM, DECODE,
                          ("the %s track could not be decoded", s.video_linked ? "audio" : "video"),
                          (nullptr));
}

// Links from's source pad to a new request pad of `to` ("video", "audio").
void link_request(GstElement* from, GstElement* to, const char* templ) {
    GPtr<GstPad> src(gst_element_get_static_pad(from, "src"));
    GPtr<GstPad> sink(gst_element_request_pad_simple(to, templ));
    if (!src || !sink || gst_pad_link(src.get(), sink.get()) != GST_PAD_LINK_OK)
        throw MediaError(std::string("cannot link ") + GST_ELEMENT_NAME(from) + " to " +
                             GST_ELEMENT_NAME(to) + "." + templ,
                         false);
}

void add_probe(GstElement* e, const char* pad, GstPadProbeCallback cb, gpointer data) {
    GPtr<GstPad> p(gst_element_get_static_pad(e, pad));
    gst_pad_add_probe(p.get(), GST_PAD_PROBE_TYPE_BUFFER, cb, data, nullptr);
}

std::string size_caps(Size s) {
    return "video/x-raw,width=" + std::to_string(s.width) + ",height=" + std::to_string(s.height) +
           ",pixel-aspect-ratio=1/1";
}

GstElement* add_x264(GstBin* bin, const VideoGraphPlan& plan, unsigned kbps) {
    GstElement* enc = add_element(bin, "x264enc");
    set_enum(enc, "speed-preset", plan.preset.c_str());
    // Rate control as ffmpeg's -b:v: average bitrate. vbv-buf-capacity 0 leaves x264
    // without a VBV (x264enc would otherwise cap every rung at its bitrate over 600 ms).
    // Keyframes every keyframe_frames exactly, closed GOPs: aligned across rungs, so every
    // segment of every rung starts with one and players switch rungs at any segment.
    std::string k = std::to_string(plan.keyframe_frames);
    std::string x264 = "scenecut=0:open-gop=0:min-keyint=" + k;
    g_object_set(enc, "bitrate", kbps, "key-int-max", plan.keyframe_frames, "byte-stream", TRUE,
                 "vbv-buf-capacity", 0u, "option-string", x264.c_str(), nullptr);
    return enc;
}

GstElement* add_jpeg_branch(GstBin* bin, GstElement* tee, Size size,
                            const std::filesystem::path& location, FramePicker* picker) {
    GstElement* q = add_queue(bin, 4);
    GstElement* scale = add_element(bin, "videoscale");
    GstElement* caps = add_caps_filter(bin, size_caps(size));
    picker->shared->scaled.emplace_back(caps, size);
    GstElement* jpeg = add_element(bin, "jpegenc");
    GstElement* sink = add_element(bin, "multifilesink");
    // async off: the branch may see no frame for a while, and must not hold up the start.
    g_object_set(sink, "location", location.c_str(), "sync", FALSE, "async", FALSE, nullptr);
    link_chain({tee, q, scale, caps, jpeg, sink});
    add_probe(q, "sink", on_frame, picker);
    return q;
}

MediaError bus_error(GstMessage* msg, const std::string& missing_codec) {
    GError* raw = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(msg, &raw, &debug);
    ErrorPtr err(raw);
    GCharPtr debug_text(debug);
    if (!missing_codec.empty()) return MediaError("unsupported codec " + missing_codec);
    std::string who = GST_MESSAGE_SRC(msg) ? GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)) : "pipeline";
    std::string text = who + ": " + (err ? err->message : "unknown error");
    if (err && err->domain == GST_STREAM_ERROR && err->code == GST_STREAM_ERROR_CODEC_NOT_FOUND)
        return MediaError("unsupported codec: " + text);
    // Writing the renditions failed (disk full, ...): worth a retry; anything else is the
    // input's fault.
    bool transient =
        err && err->domain == GST_RESOURCE_ERROR &&
        (err->code == GST_RESOURCE_ERROR_WRITE || err->code == GST_RESOURCE_ERROR_NO_SPACE_LEFT ||
         err->code == GST_RESOURCE_ERROR_OPEN_WRITE ||
         err->code == GST_RESOURCE_ERROR_OPEN_READ_WRITE || err->code == GST_RESOURCE_ERROR_CLOSE ||
         err->code == GST_RESOURCE_ERROR_SYNC);
    return MediaError(text, !transient);
}

struct PipelineGuard {
    GstElement* p;
    ~PipelineGuard() {
        gst_element_set_state(p, GST_STATE_NULL);
        gst_object_unref(p);
    }
};

} // namespace

VideoGraphResult run_video_graph(const VideoGraphPlan& plan, const ProgressFn& progress) {
    // Declared before the pipeline: its probes point into these until it is gone.
    Shared shared;
    shared.codecs.resize(plan.rungs.size());
    FramePicker thumbs{&shared, true, plan.thumbnail_seconds};
    FramePicker poster{&shared, false, 0, plan.poster_at_seconds};
    std::vector<std::unique_ptr<CodecWatch>> watches;

    PipelineGuard guard{gst_pipeline_new("video")};
    GstBin* bin = GST_BIN(guard.p);
    shared.bin = bin;

    GstElement* src = add_element(bin, "filesrc");
    g_object_set(src, "location", plan.input.c_str(), nullptr);
    GstElement* decode = add_element(bin, "decodebin");
    link_chain({src, decode});

    GstElement* convert = add_element(bin, "videoconvert"); // passthrough for I420 sources
    GstElement* i420 = add_caps_filter(bin, "video/x-raw,format=I420");
    GstElement* vtee = add_element(bin, "tee");
    link_chain({convert, i420});
    if (plan.flip != "identity") {
        GstElement* flip = add_element(bin, "videoflip");
        set_enum(flip, "video-direction", plan.flip.c_str());
        link_chain({i420, flip, vtee});
    } else {
        link_chain({i420, vtee});
    }
    add_probe(vtee, "sink", on_decoded, &shared);
    GPtr<GstPad> tee_sink(gst_element_get_static_pad(vtee, "sink"));
    gst_pad_add_probe(tee_sink.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_caps, &shared,
                      nullptr);
    shared.video_in = convert;

    GstElement* atee = nullptr;
    if (plan.has_audio) {
        GstElement* aconv = add_element(bin, "audioconvert");
        GstElement* resample = add_element(bin, "audioresample");
        GstElement* aac = add_element(bin, "avenc_aac");
        g_object_set(aac, "bitrate", gint(plan.audio_kbps * 1000), nullptr);
        GstElement* aparse = add_element(bin, "aacparse");
        atee = add_element(bin, "tee");
        link_chain({aconv, resample, aac, aparse, atee});
        shared.audio_in = aconv;
    }

    for (std::size_t i = 0; i < plan.rungs.size(); ++i) {
        const PlannedRung& r = plan.rungs[i];
        std::filesystem::path dir = plan.out_dir / r.name;
        // A few frames of slack per rung, so the encoders run in parallel with the decoder.
        GstElement* q = add_queue(bin, 8);
        GstElement* scale = add_element(bin, "videoscale");
        GstElement* caps = add_caps_filter(bin, size_caps({r.width, r.height}));
        shared.scaled.emplace_back(caps, Size{r.width, r.height});
        GstElement* enc = add_x264(bin, plan, r.video_kbps);
        GstElement* parse = add_element(bin, "h264parse");
        GstElement* hls = add_element(bin, "hlssink2");
        // Every segment is kept and listed (VOD); the keyframes are already where the
        // segments must be cut, so hlssink2 need not ask the encoder for more.
        g_object_set(hls, "location", (dir / "seg%05d.ts").c_str(), "playlist-location",
                     (dir / "index.m3u8").c_str(), "target-duration", plan.segment_seconds,
                     "playlist-length", 0u, "max-files", 0u, "send-keyframe-requests", FALSE,
                     nullptr);
        link_chain({vtee, q, scale, caps, enc, parse});
        link_request(parse, hls, "video");
        watches.push_back(std::make_unique<CodecWatch>(CodecWatch{&shared, i}));
        add_probe(parse, "src", on_encoded, watches.back().get());
        if (atee) {
            // Time-bounded: audio waits here while the encoders' lookahead delays the video.
            GstElement* aq = add_queue(bin, 0, 10 * GST_SECOND);
            link_chain({atee, aq});
            link_request(aq, hls, "audio");
        }
    }
    add_jpeg_branch(bin, vtee, plan.thumbnail, plan.out_dir / "thumbs" / "%05d.jpg", &thumbs);
    add_jpeg_branch(bin, vtee, plan.poster, plan.out_dir / "poster.jpg", &poster);
    g_signal_connect(decode, "pad-added", G_CALLBACK(on_pad_added), &shared);
    g_signal_connect(decode, "no-more-pads", G_CALLBACK(on_no_more_pads), &shared);

    GPtr<GstBus> bus(gst_element_get_bus(guard.p));
    std::string missing_codec;
    auto next_error = [&](GstClockTime wait) -> MediaError {
        MessagePtr m(gst_bus_timed_pop_filtered(bus.get(), wait, GST_MESSAGE_ERROR));
        return m ? bus_error(m.get(), missing_codec)
                 : MediaError("the pipeline did not start", false);
    };
    if (gst_element_set_state(guard.p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        throw next_error(GST_SECOND);

    auto last_move = Clock::now();
    gint64 last_position = -1;
    double percent = 2;
    auto message_types = GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_ELEMENT);
    for (;;) {
        MessagePtr msg(gst_bus_timed_pop_filtered(bus.get(), std::chrono::nanoseconds(tick).count(),
                                                  message_types));
        if (msg && GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_EOS) break;
        if (msg && GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_ERROR)
            throw bus_error(msg.get(), missing_codec);
        if (msg && gst_is_missing_plugin_message(msg.get())) {
            GCharPtr detail(gst_missing_plugin_message_get_installer_detail(msg.get()));
            missing_codec = missing_decoder_caps(detail.get());
        }

        // Progress: the position the pipeline reports, else how far decoding is.
        gint64 decoded = shared.position.load(), reported = -1;
        auto now = Clock::now();
        if (decoded != last_position) {
            last_position = decoded;
            last_move = now;
        } else if (now - last_move > stall_limit) {
            throw MediaError("the pipeline stalled: no frame decoded for 60 s", false);
        }
        double done = double(decoded) / GST_SECOND;
        if (plan.max_duration_seconds > 0 && done > plan.max_duration_seconds + 1)
            throw MediaError("longer than the " + std::to_string(plan.max_duration_seconds) +
                             " s allowed");
        double total = plan.duration_seconds;
        gint64 queried = 0;
        if (total <= 0 && gst_element_query_duration(guard.p, GST_FORMAT_TIME, &queried))
            total = double(queried) / GST_SECOND;
        if (gst_element_query_position(guard.p, GST_FORMAT_TIME, &reported) && reported >= 0)
            done = std::min(done, double(reported) / GST_SECOND);
        if (total > 0) percent = std::max(percent, 2 + 95 * std::min(1.0, done / total));
        if (progress) progress(percent, "encoding");
    }
    if (!shared.video_linked) throw MediaError("no video could be decoded");
    if (shared.position.load() == 0 && shared.first_pts.load() < 0)
        throw MediaError("no video frame could be decoded");
    gst_element_set_state(guard.p, GST_STATE_NULL); // every file closed

    VideoGraphResult out;
    out.codecs = shared.codecs;
    out.thumbnail_times = shared.thumbnail_times;
    out.decoded_seconds = double(shared.position.load()) / GST_SECOND;
    return out;
}

} // namespace strata::transcoded

#include "video_probe.hh"

#include "gst_ptr.hh"
#include "mp4_boxes.hh"

#include <cstring>
#include <gst/pbutils/pbutils.h>

namespace strata::transcoded {
namespace {

struct StreamListFree {
    void operator()(GList* l) const { gst_discoverer_stream_info_list_free(l); }
};
using StreamList = std::unique_ptr<GList, StreamListFree>;

std::string caps_name(GstDiscovererStreamInfo* s) {
    CapsPtr caps(gst_discoverer_stream_info_get_caps(s));
    if (!caps || gst_caps_get_size(caps.get()) == 0) return "";
    return gst_structure_get_name(gst_caps_get_structure(caps.get(), 0));
}

int caps_int(GstDiscovererStreamInfo* s, const char* field) {
    CapsPtr caps(gst_discoverer_stream_info_get_caps(s));
    int v = 0;
    if (caps && gst_caps_get_size(caps.get()) > 0)
        gst_structure_get_int(gst_caps_get_structure(caps.get(), 0), field, &v);
    return v;
}

std::string video_codec(GstDiscovererStreamInfo* s) {
    std::string name = caps_name(s);
    if (name == "video/mpeg") {
        int v = caps_int(s, "mpegversion");
        return v == 4 ? "mpeg4" : v == 2 ? "mpeg2" : "mpeg1";
    }
    if (name.rfind("video/x-", 0) == 0) return name.substr(8); // h264, h265, vp8, vp9, av1
    return name;
}

std::string audio_codec(GstDiscovererStreamInfo* s) {
    std::string name = caps_name(s);
    if (name == "audio/mpeg") {
        int v = caps_int(s, "mpegversion");
        return v == 1 ? "mp3" : "aac";
    }
    if (name == "audio/x-raw") return "pcm";
    if (name.rfind("audio/x-", 0) == 0) return name.substr(8); // opus, vorbis, flac, ac3
    return name;
}

MediaFormat container_format(GstDiscovererInfo* info) {
    GPtr<GstDiscovererStreamInfo> top(gst_discoverer_info_get_stream_info(info));
    if (!top || !GST_IS_DISCOVERER_CONTAINER_INFO(top.get())) return MediaFormat::unknown;
    std::string name = caps_name(top.get());
    if (name == "video/quicktime") return MediaFormat::mp4;
    if (name == "video/x-matroska" || name == "video/webm") return MediaFormat::matroska;
    if (name == "video/mpegts") return MediaFormat::mpegts;
    if (name == "video/x-msvideo") return MediaFormat::avi;
    if (name == "application/ogg") return MediaFormat::ogg;
    return MediaFormat::unknown;
}

std::string missing_codec(GstDiscovererInfo* info) {
    const gchar** details = gst_discoverer_info_get_missing_elements_installer_details(info);
    for (; details && *details; ++details)
        if (auto caps = missing_decoder_caps(*details); !caps.empty()) return caps;
    return "(no decoder)";
}

} // namespace

std::string missing_decoder_caps(const char* detail) {
    const char* d = detail ? std::strstr(detail, "decoder-") : nullptr;
    if (!d) return "";
    std::string caps = d + 8;
    return caps.substr(0, caps.find_first_of(", "));
}

Orientation parse_orientation(const std::string& tag) {
    bool flip = tag.rfind("flip-", 0) == 0;
    std::string rest = flip ? tag.substr(5) : tag;
    if (rest == "rotate-90") return {90, flip};
    if (rest == "rotate-180") return {180, flip};
    if (rest == "rotate-270") return {270, flip};
    return {0, flip && rest == "rotate-0"};
}

const char* flip_direction(Orientation o) {
    // A mirror (horizontal flip) first, then the clockwise rotation: mirrored 90 and 270
    // are the two diagonal flips.
    switch (o.rotation) {
    case 90:
        return o.mirrored ? "ur-ll" : "90r";
    case 180:
        return o.mirrored ? "vert" : "180";
    case 270:
        return o.mirrored ? "ul-lr" : "90l";
    default:
        return o.mirrored ? "horiz" : "identity";
    }
}

VideoProbe probe_video(const std::filesystem::path& input, double timeout_seconds) {
    std::error_code ec;
    auto bytes = std::filesystem::file_size(input, ec);
    if (ec) throw MediaError("cannot read " + input.string() + ": " + ec.message(), false);
    if (bytes == 0) throw MediaError("empty file");
    if (mp4_cut_before_index(input)) throw MediaError("truncated MP4: its index (moov) is missing");

    GError* raw = nullptr;
    GPtr<GstDiscoverer> disc(gst_discoverer_new(GstClockTime(timeout_seconds * GST_SECOND), &raw));
    ErrorPtr err(raw);
    if (!disc) throw MediaError(std::string("discoverer: ") + (err ? err->message : "?"), false);
    GCharPtr uri(gst_filename_to_uri(input.c_str(), &raw));
    err.reset(raw);
    if (!uri) throw MediaError("bad path " + input.string(), false);
    raw = nullptr;
    GPtr<GstDiscovererInfo> info(gst_discoverer_discover_uri(disc.get(), uri.get(), &raw));
    err.reset(raw);
    auto result = info ? gst_discoverer_info_get_result(info.get()) : GST_DISCOVERER_ERROR;
    switch (result) {
    case GST_DISCOVERER_OK:
        break;
    case GST_DISCOVERER_MISSING_PLUGINS:
        throw MediaError("unsupported codec " + missing_codec(info.get()));
    case GST_DISCOVERER_TIMEOUT:
        throw MediaError("probing the source timed out", false);
    default:
        throw MediaError(std::string("not a playable video: ") +
                         (err ? err->message : "unknown error"));
    }

    StreamList videos(gst_discoverer_info_get_video_streams(info.get()));
    StreamList audios(gst_discoverer_info_get_audio_streams(info.get()));
    if (!videos) throw MediaError("no video stream");
    auto* v = static_cast<GstDiscovererStreamInfo*>(videos.get()->data);
    auto* vi = GST_DISCOVERER_VIDEO_INFO(v);
    if (gst_discoverer_video_info_is_image(vi)) throw MediaError("a still image, not a video");

    VideoProbe p;
    p.coded_width = gst_discoverer_video_info_get_width(vi);
    p.coded_height = gst_discoverer_video_info_get_height(vi);
    if (p.coded_width == 0 || p.coded_height == 0) throw MediaError("video has no dimensions");
    p.fps_n = int(gst_discoverer_video_info_get_framerate_num(vi));
    p.fps_d = int(gst_discoverer_video_info_get_framerate_denom(vi));
    if (p.fps_d <= 0) p.fps_n = 0, p.fps_d = 1;
    p.has_audio = audios != nullptr;

    // The rotation tag is on the stream (qtdemux) or, for some containers, global.
    for (const GstTagList* tags :
         {gst_discoverer_stream_info_get_tags(v), gst_discoverer_info_get_tags(info.get())}) {
        gchar* s = nullptr;
        if (tags && gst_tag_list_get_string(tags, GST_TAG_IMAGE_ORIENTATION, &s)) {
            p.orientation = s;
            g_free(s);
            break;
        }
    }

    MediaInfo& m = p.info;
    m.format = container_format(info.get());
    m.duration_seconds = double(gst_discoverer_info_get_duration(info.get())) / GST_SECOND;
    if (!(m.duration_seconds > 0) || m.duration_seconds > 1e9) m.duration_seconds = 0;
    m.video_codec = video_codec(v);
    m.audio_codec =
        audios ? audio_codec(static_cast<GstDiscovererStreamInfo*>(audios.get()->data)) : "";
    m.frame_rate = p.fps_n > 0 ? double(p.fps_n) / p.fps_d : 0;
    // Display size: square pixels, then the rotation.
    unsigned par_n = gst_discoverer_video_info_get_par_num(vi);
    unsigned par_d = gst_discoverer_video_info_get_par_denom(vi);
    unsigned w = p.coded_width, h = p.coded_height;
    if (par_n > 0 && par_d > 0 && par_n != par_d)
        w = static_cast<unsigned>(double(w) * par_n / par_d + 0.5);
    Orientation o = parse_orientation(p.orientation);
    m.rotation = o.rotation;
    m.mirrored = o.mirrored;
    if (o.rotation == 90 || o.rotation == 270) std::swap(w, h);
    m.width = w;
    m.height = h;
    return p;
}

} // namespace strata::transcoded

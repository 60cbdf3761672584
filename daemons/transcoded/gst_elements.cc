#include "gst_elements.hh"

#include <gst/gst.h>
#include <mutex>
#include <stdexcept>

namespace strata::transcoded {

const std::vector<NeededElement>& needed_elements() {
    static const std::vector<NeededElement> all = {
        {"filesrc", "libgstreamer1.0-0", "reading sources"},
        {"queue", "libgstreamer1.0-0", "pipeline threads"},
        {"tee", "libgstreamer1.0-0", "one decode for every rung"},
        {"capsfilter", "libgstreamer1.0-0", "rung sizes"},
        {"fakesink", "libgstreamer1.0-0", "a video's extra tracks"},
        {"decodebin", "gstreamer1.0-plugins-base", "decoding any source"},
        {"videoconvert", "gstreamer1.0-plugins-base", "pixel formats"},
        {"videoscale", "gstreamer1.0-plugins-base", "resizing"},
        {"audioconvert", "gstreamer1.0-plugins-base", "audio formats"},
        {"audioresample", "gstreamer1.0-plugins-base", "audio rates"},
        {"appsink", "gstreamer1.0-plugins-base", "frames to the worker"},
        {"appsrc", "gstreamer1.0-plugins-base", "decoded images to their encoders"},
        {"uridecodebin", "gstreamer1.0-plugins-base", "probing videos (GstDiscoverer)"},
        {"giostreamsink", "gstreamer1.0-plugins-base", "HLS segments (inside hlssink2)"},
        {"videoflip", "gstreamer1.0-plugins-good", "EXIF orientation and rotation"},
        {"jpegdec", "gstreamer1.0-plugins-good", "JPEG images"},
        {"jpegenc", "gstreamer1.0-plugins-good", "JPEG renditions and posters"},
        {"pngdec", "gstreamer1.0-plugins-good", "PNG images"},
        {"videocrop", "gstreamer1.0-plugins-good", "square image thumbnails"},
        {"qtdemux", "gstreamer1.0-plugins-good", "MP4 and MOV sources"},
        {"aacparse", "gstreamer1.0-plugins-good", "AAC audio"},
        {"multifilesink", "gstreamer1.0-plugins-good", "video posters and thumbnails"},
        {"splitmuxsink", "gstreamer1.0-plugins-good", "HLS segments (inside hlssink2)"},
        {"webpdec", "gstreamer1.0-plugins-bad", "WebP images"},
        {"webpenc", "gstreamer1.0-plugins-bad", "renditions of transparent images"},
        {"h264parse", "gstreamer1.0-plugins-bad", "H.264 streams"},
        {"mpegtsmux", "gstreamer1.0-plugins-bad", "HLS segments"},
        {"hlssink2", "gstreamer1.0-plugins-bad", "HLS playlists"},
        {"x264enc", "gstreamer1.0-plugins-ugly", "H.264 encoding of the ladder"},
        {"avdec_h264", "gstreamer1.0-libav", "H.264 decoding"},
        {"avdec_gif", "gstreamer1.0-libav", "GIF images"},
        {"avdec_aac", "gstreamer1.0-libav", "AAC audio decoding"},
        {"avenc_aac", "gstreamer1.0-libav", "AAC encoding"},
    };
    return all;
}

std::vector<NeededElement> missing_elements(const std::vector<NeededElement>& needed) {
    static std::once_flag once;
    static bool ok = false;
    static std::string why;
    std::call_once(once, [] {
        GError* err = nullptr;
        ok = gst_init_check(nullptr, nullptr, &err);
        if (!ok) why = err ? err->message : "unknown error";
        if (err) g_error_free(err);
    });
    if (!ok) throw std::runtime_error("GStreamer cannot start: " + why);
    std::vector<NeededElement> out;
    for (const auto& e : needed) {
        GstElementFactory* f = gst_element_factory_find(e.name);
        if (f)
            gst_object_unref(f);
        else
            out.push_back(e);
    }
    return out;
}

std::string describe_missing(const std::vector<NeededElement>& missing) {
    if (missing.empty()) return "";
    std::string names, packages;
    for (const auto& e : missing) {
        names += (names.empty() ? "" : ", ") + std::string(e.name) + " (" + e.use + ")";
        if (packages.find(e.package) == std::string::npos)
            packages += (packages.empty() ? "" : " ") + std::string(e.package);
    }
    return "GStreamer elements missing: " + names + "; install: apt-get install " + packages;
}

} // namespace strata::transcoded

// Explicit pipelines per format rather than decodebin: decodebin does not plug jpegparse (so
// EXIF orientation is lost) and was seen to hang on a 1x1 GIF. Frames leave and enter through
// appsink/appsrc, polled with short timeouts so a stuck element can never hang the worker.
#include "image_codec.hh"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <string>

namespace strata::transcoded {

namespace {

using Clock = std::chrono::steady_clock;

struct ObjectUnref {
    void operator()(gpointer p) const { gst_object_unref(p); }
};
template <class T>
using GstPtr = std::unique_ptr<T, ObjectUnref>;

// A parsed pipeline, stopped (state NULL) before it is freed.
class Pipeline {
public:
    explicit Pipeline(const std::string& description) {
        if (!gst_is_initialized()) gst_init(nullptr, nullptr);
        GError* err = nullptr;
        GstElement* p = gst_parse_launch(description.c_str(), &err);
        if (err) {
            std::string why = err->message;
            // An element missing is the installation's fault; elements that cannot be linked
            // (a size an encoder refuses) are this input's.
            bool missing =
                err->domain == GST_PARSE_ERROR && err->code == GST_PARSE_ERROR_NO_SUCH_ELEMENT;
            g_error_free(err);
            if (p) gst_object_unref(p);
            throw MediaError("cannot build the image pipeline: " + why, !missing);
        }
        if (!p) throw MediaError("cannot build the image pipeline", false);
        pipeline_.reset(GST_ELEMENT(gst_object_ref_sink(p))); // gst_parse_launch: floating
    }
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;
    ~Pipeline() { gst_element_set_state(pipeline_.get(), GST_STATE_NULL); }

    GstPtr<GstElement> element(const char* name) const {
        return GstPtr<GstElement>(gst_bin_get_by_name(GST_BIN(pipeline_.get()), name));
    }

    void play(const char* what) {
        if (gst_element_set_state(pipeline_.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
            raise_error(what);
    }

    // Throws the first error the pipeline posted, if any.
    void raise_error(const char* what) const {
        GstPtr<GstBus> bus(gst_element_get_bus(pipeline_.get()));
        GstMessage* msg = gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR);
        if (!msg) return;
        GError* err = nullptr;
        gst_message_parse_error(msg, &err, nullptr);
        std::string why = err ? err->message : "unknown error";
        // Reading the file (resource errors) may work another time; bad data never will.
        bool permanent = !err || err->domain != GST_RESOURCE_ERROR;
        // A decoder refusing its data shows as a stream error of the source element.
        if (err && err->domain == GST_STREAM_ERROR) why += " (corrupt or unsupported data)";
        if (err) g_error_free(err);
        gst_message_unref(msg);
        throw MediaError(std::string(what) + ": " + why, permanent);
    }

    // The next sample at sink, or null at the end of the stream. A pipeline that neither
    // delivers nor fails before the deadline counts as bad input: images are small and a
    // stuck decoder will be stuck again on a retry.
    SamplePtr pull(GstAppSink* sink, Clock::time_point deadline, const char* what,
                   const Tick& tick) const {
        for (;;) {
            if (GstSample* s = gst_app_sink_try_pull_sample(sink, 100 * GST_MSECOND))
                return SamplePtr(s);
            raise_error(what);
            if (gst_app_sink_is_eos(sink)) return nullptr;
            if (Clock::now() > deadline) throw MediaError(std::string(what) + ": timed out");
            if (tick) tick();
        }
    }

private:
    GstPtr<GstElement> pipeline_;
};

// avdec_gif gets the whole file in one buffer; beyond this it is refused.
constexpr std::uintmax_t gif_max_bytes = 256u << 20;

// videoflip's video-direction for an EXIF orientation.
const char* flip_direction(Orientation o) {
    if (o.mirrored) {
        switch (o.rotation) {
        case 90:
            return "ur-ll";
        case 180:
            return "vert";
        case 270:
            return "ul-lr";
        default:
            return "horiz";
        }
    }
    switch (o.rotation) {
    case 90:
        return "90r";
    case 180:
        return "180";
    case 270:
        return "90l";
    default:
        return "identity";
    }
}

std::string decoder(const ImageHeader& h, std::uintmax_t file_size) {
    switch (h.format) {
    case MediaFormat::jpeg:
        return "filesrc name=src ! jpegdec";
    case MediaFormat::png:
        return "filesrc name=src ! pngdec";
    case MediaFormat::webp:
        return "filesrc name=src ! webpdec";
    case MediaFormat::gif:
        if (file_size > gif_max_bytes) throw MediaError("GIF image larger than 256 MiB");
        // There is no GIF parser: avdec_gif takes the whole file as one packet, decodes its
        // first frame and needs the screen size in its caps.
        return "filesrc name=src blocksize=" + std::to_string(file_size) +
               " ! image/gst-libav-gif,parsed=true,framerate=0/1,width=" + std::to_string(h.width) +
               ",height=" + std::to_string(h.height) + " ! avdec_gif";
    default:
        throw MediaError(std::string("not an image: ") + format_name(h.format));
    }
}

unsigned caps_int(GstCaps* caps, const char* field) {
    int v = 0;
    if (caps && gst_caps_get_size(caps) > 0)
        gst_structure_get_int(gst_caps_get_structure(caps, 0), field, &v);
    return v > 0 ? unsigned(v) : 0;
}

} // namespace

Picture decode_picture(const std::filesystem::path& input, std::uintmax_t file_size,
                       const ImageHeader& header, std::chrono::seconds timeout, const Tick& tick) {
    std::string format = header.alpha ? "RGBA" : "I420";
    Pipeline p(
        decoder(header, file_size) + " ! videoconvert ! video/x-raw,format=" + format +
        " ! videoflip video-direction=" + flip_direction(exif_orientation(header.orientation)) +
        " ! appsink name=sink sync=false max-buffers=1");
    // Set here, not in the description: a path may hold characters the parser would take.
    g_object_set(p.element("src").get(), "location", input.c_str(), nullptr);
    auto sink = p.element("sink");
    std::string what = std::string("cannot decode the ") + format_name(header.format) + " image";
    p.play(what.c_str());
    Picture pic;
    pic.sample = p.pull(GST_APP_SINK(sink.get()), Clock::now() + timeout, what.c_str(), tick);
    if (!pic.sample) throw MediaError(what + ": no picture in the file");
    GstCaps* caps = gst_sample_get_caps(pic.sample.get());
    pic.width = caps_int(caps, "width");
    pic.height = caps_int(caps, "height");
    if (!pic.width || !pic.height || !gst_sample_get_buffer(pic.sample.get()))
        throw MediaError(what + ": the decoder gave no picture");
    return pic;
}

std::vector<std::uint8_t> encode_picture(const Picture& picture, const Rendition& r,
                                         std::chrono::seconds timeout, const Tick& tick) {
    std::string size = std::to_string(r.width) + ",height=" + std::to_string(r.height);
    std::string encoder = r.webp ? "webpenc quality=" : "jpegenc quality=";
    Pipeline p("appsrc name=src format=time ! videocrop left=" + std::to_string(r.crop_left) +
               " right=" + std::to_string(r.crop_right) + " top=" + std::to_string(r.crop_top) +
               " bottom=" + std::to_string(r.crop_bottom) +
               // Lanczos: a bilinear downscale of a large photo aliases visibly.
               " ! videoscale method=lanczos add-borders=false ! video/x-raw,width=" + size +
               ",pixel-aspect-ratio=1/1 ! videoconvert ! " + encoder + std::to_string(r.quality) +
               " ! appsink name=sink sync=false");
    auto src = p.element("src");
    auto sink = p.element("sink");
    const char* what = r.webp ? "cannot encode WebP" : "cannot encode JPEG";
    p.play(what);
    if (gst_app_src_push_sample(GST_APP_SRC(src.get()), picture.sample.get()) != GST_FLOW_OK ||
        gst_app_src_end_of_stream(GST_APP_SRC(src.get())) != GST_FLOW_OK) {
        p.raise_error(what);
        throw MediaError(std::string(what) + ": the pipeline refused the picture", false);
    }
    std::vector<std::uint8_t> out;
    auto deadline = Clock::now() + timeout;
    while (SamplePtr s = p.pull(GST_APP_SINK(sink.get()), deadline, what, tick)) {
        GstBuffer* buf = gst_sample_get_buffer(s.get());
        GstMapInfo map;
        if (!buf || !gst_buffer_map(buf, &map, GST_MAP_READ)) continue;
        out.insert(out.end(), map.data, map.data + map.size);
        gst_buffer_unmap(buf, &map);
    }
    if (out.empty()) throw MediaError(std::string(what) + ": the encoder wrote nothing", false);
    return out;
}

} // namespace strata::transcoded

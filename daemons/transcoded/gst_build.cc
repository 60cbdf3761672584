#include "gst_build.hh"

#include "gst_ptr.hh"
#include "media.hh"

namespace strata::transcoded {

void init_gstreamer() {
    GError* err = nullptr;
    if (!gst_init_check(nullptr, nullptr, &err)) {
        std::string why = err ? err->message : "unknown error";
        if (err) g_error_free(err);
        throw MediaError("GStreamer cannot start: " + why, false);
    }
}

GstElement* add_element(GstBin* bin, const char* factory, const char* name) {
    GstElement* e = gst_element_factory_make(factory, name);
    if (!e) throw MediaError(std::string("GStreamer element missing: ") + factory, false);
    gst_bin_add(bin, e);
    return e;
}

GstElement* add_caps_filter(GstBin* bin, const std::string& caps) {
    CapsPtr c(gst_caps_from_string(caps.c_str()));
    if (!c) throw MediaError("bad caps " + caps, false);
    GstElement* f = add_element(bin, "capsfilter");
    g_object_set(f, "caps", c.get(), nullptr);
    return f;
}

GstElement* add_queue(GstBin* bin, unsigned max_buffers, guint64 max_time_ns) {
    GstElement* q = add_element(bin, "queue");
    g_object_set(q, "max-size-bytes", 0u, "max-size-buffers", max_time_ns ? 0u : max_buffers,
                 "max-size-time", max_time_ns, nullptr);
    return q;
}

void link_chain(std::initializer_list<GstElement*> chain) {
    GstElement* prev = nullptr;
    for (GstElement* e : chain) {
        if (prev && !gst_element_link(prev, e))
            throw MediaError(std::string("cannot link ") + GST_ELEMENT_NAME(prev) + " to " +
                                 GST_ELEMENT_NAME(e),
                             false);
        prev = e;
    }
}

void set_enum(GstElement* e, const char* property, const char* nick) {
    GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), property);
    bool ok = false;
    if (spec && G_IS_PARAM_SPEC_ENUM(spec))
        ok = g_enum_get_value_by_nick(G_PARAM_SPEC_ENUM(spec)->enum_class, nick) != nullptr;
    else if (spec && G_IS_PARAM_SPEC_FLAGS(spec))
        ok = g_flags_get_value_by_nick(G_PARAM_SPEC_FLAGS(spec)->flags_class, nick) != nullptr;
    if (!ok)
        throw MediaError(std::string(GST_ELEMENT_NAME(e)) + ": no " + property + " " + nick, false);
    gst_util_set_object_arg(G_OBJECT(e), property, nick);
}

} // namespace strata::transcoded

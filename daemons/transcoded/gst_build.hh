// Building pipelines element by element: each helper throws MediaError rather than
// returning NULL, so a missing element or a failed link is an error with a name.
#pragma once

#include <gst/gst.h>
#include <initializer_list>
#include <string>

namespace strata::transcoded {

// gst_init_check, once; throws MediaError(transient) when GStreamer cannot start.
void init_gstreamer();
// A new element added to bin (which owns it). Throws MediaError(transient) when GStreamer
// lacks the element: the machine is at fault, not the input.
GstElement* add_element(GstBin* bin, const char* factory, const char* name = nullptr);
// A capsfilter holding caps (a caps string, "video/x-raw,width=640").
GstElement* add_caps_filter(GstBin* bin, const std::string& caps);
// A queue bounded by buffers only (0: unbounded) or, for time_ns > 0, by time only.
GstElement* add_queue(GstBin* bin, unsigned max_buffers, guint64 max_time_ns = 0);
// Links each element to the next; throws MediaError naming the pair that failed.
void link_chain(std::initializer_list<GstElement*> chain);
// Sets an enum or flags property by its nick ("veryfast"); throws if it has no such value.
void set_enum(GstElement* e, const char* property, const char* nick);

} // namespace strata::transcoded

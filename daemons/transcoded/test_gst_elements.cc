// The start-up check of GStreamer elements: what this machine has, and what the message says
// for what it lacks.
#include "gst_elements.hh"

#include <criterion/criterion.h>
#include <string>

using namespace strata::transcoded;

Test(gst_elements, everything_the_pipelines_need_is_installed_here) {
    auto missing = missing_elements(needed_elements());
    cr_assert(missing.empty(), "%s", describe_missing(missing).c_str());
}

Test(gst_elements, a_missing_element_is_named_with_its_package) {
    std::vector<NeededElement> wanted = {
        {"videoscale", "gstreamer1.0-plugins-base", "resizing"},
        {"strata-no-such-encoder", "gstreamer1.0-plugins-ugly", "H.264 encoding"},
        {"strata-no-such-muxer", "gstreamer1.0-plugins-ugly", "muxing"}};
    auto missing = missing_elements(wanted);
    cr_assert_eq(missing.size(), 2u);
    cr_assert_eq(describe_missing(missing),
                 "GStreamer elements missing: strata-no-such-encoder (H.264 encoding), "
                 "strata-no-such-muxer (muxing); install: apt-get install "
                 "gstreamer1.0-plugins-ugly");
    cr_assert_eq(describe_missing({}), "");
}

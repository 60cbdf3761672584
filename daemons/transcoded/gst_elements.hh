// The GStreamer elements the transcoder's pipelines are built from, each with the Debian
// package that provides it: checked at start, so a missing plugin is named (with what to
// install) at once rather than as a failed job later. The strata-transcoded package
// depends on these packages.
#pragma once

#include <string>
#include <vector>

namespace strata::transcoded {

struct NeededElement {
    const char* name;    // factory name, e.g. "x264enc"
    const char* package; // Debian package, e.g. "gstreamer1.0-plugins-ugly"
    const char* use;     // what it is for, for the message
};

const std::vector<NeededElement>& needed_elements();

// Initializes GStreamer (once) and returns the elements of `needed` it does not have.
// Throws std::runtime_error if GStreamer cannot be initialized.
std::vector<NeededElement> missing_elements(const std::vector<NeededElement>& needed);

// "GStreamer elements missing: x264enc (H.264 encoding), ... - install:
// gstreamer1.0-plugins-ugly ..." (each package once); "" when nothing is missing.
std::string describe_missing(const std::vector<NeededElement>& missing);

} // namespace strata::transcoded

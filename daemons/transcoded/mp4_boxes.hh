// A look at an MP4/QuickTime file's top-level boxes before any demuxer sees it: a file cut
// short before its index (moov, which muxers write last unless asked to put it first) can
// never play, and qtdemux does not always say so promptly (GstDiscoverer then waits for its
// timeout).
#pragma once

#include <filesystem>

namespace strata::transcoded {

// True when the file starts like an MP4 (an ftyp box) and its top-level boxes run past the
// end of the file before a moov box appears. False for anything else, and for files that
// cannot be read (the probe reports those).
bool mp4_cut_before_index(const std::filesystem::path& file);

} // namespace strata::transcoded

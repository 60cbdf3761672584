#include "hls_playlist.hh"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace strata::transcoded {

std::vector<HlsSegment> parse_media_playlist(const std::string& text) {
    std::vector<HlsSegment> out;
    std::istringstream in(text);
    std::string line;
    double pending = -1;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("#EXTINF:", 0) == 0) {
            pending = std::strtod(line.c_str() + 8, nullptr);
        } else if (!line.empty() && line[0] != '#' && pending >= 0) {
            out.push_back({line, pending});
            pending = -1;
        }
    }
    return out;
}

std::string vod_media_playlist(const std::vector<HlsSegment>& segments) {
    long target = 1;
    for (const auto& s : segments)
        target = std::max(target, std::lround(s.duration_seconds));
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(3);
    out << "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:" << target
        << "\n#EXT-X-MEDIA-SEQUENCE:0\n";
    for (const auto& s : segments)
        out << "#EXTINF:" << s.duration_seconds << ",\n" << s.uri << "\n";
    out << "#EXT-X-ENDLIST\n";
    return out.str();
}

std::string master_playlist(const std::vector<HlsVariant>& variants) {
    std::ostringstream out;
    // Every segment starts with a keyframe (the GOPs are aligned and closed).
    out << "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n";
    for (const auto& v : variants) {
        out << "#EXT-X-STREAM-INF:BANDWIDTH=" << v.bandwidth;
        if (v.average_bandwidth) out << ",AVERAGE-BANDWIDTH=" << v.average_bandwidth;
        out << ",RESOLUTION=" << v.width << "x" << v.height << ",CODECS=\"" << v.codecs << "\"\n"
            << v.uri << "\n";
    }
    return out.str();
}

} // namespace strata::transcoded

// HLS playlists as text: reading the media playlist hlssink2 writes, writing it back as a
// VOD playlist, and writing the master playlist. Pure string work, unit-tested.
#pragma once

#include <string>
#include <vector>

namespace strata::transcoded {

struct HlsSegment {
    std::string uri;
    double duration_seconds = 0;
};
// The segments of a media playlist (#EXTINF and the URI line after it), in order.
std::vector<HlsSegment> parse_media_playlist(const std::string& text);

// A complete VOD media playlist: #EXT-X-PLAYLIST-TYPE:VOD, a target duration no segment
// exceeds once rounded (as the spec requires), and #EXT-X-ENDLIST.
std::string vod_media_playlist(const std::vector<HlsSegment>& segments);

struct HlsVariant {
    std::string uri;             // "720p/index.m3u8"
    unsigned long bandwidth = 0; // bits/s, peak segment
    unsigned long average_bandwidth = 0;
    unsigned width = 0, height = 0;
    std::string codecs; // "avc1.64001f,mp4a.40.2"
};
std::string master_playlist(const std::vector<HlsVariant>& variants);

} // namespace strata::transcoded

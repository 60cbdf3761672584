// The video job's pure parts: the ladder plan, sizes, the codec string from an SPS, the
// orientation tag, and the HLS playlists as text.
#include "hls_playlist.hh"
#include "video_ladder.hh"
#include "video_pipeline.hh"
#include "video_probe.hh"

#include <criterion/criterion.h>
#include <string>

using namespace strata::transcoded;

namespace {
const std::vector<Rung> ladder = VideoOptions{}.ladder;

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}
} // namespace

Test(ladder, drops_rungs_above_the_source) {
    auto r = plan_ladder(ladder, 1280, 720);
    cr_assert_eq(r.size(), 3u);
    cr_assert_eq(r[0].name, "720p");
    cr_assert(r[0].width == 1280 && r[0].height == 720 && r[0].video_kbps == 2800);
    cr_assert(r[1].width == 854 && r[1].height == 480, "%ux%u", r[1].width, r[1].height);
    cr_assert(r[2].width == 640 && r[2].height == 360);
    cr_assert_eq(plan_ladder(ladder, 1920, 1080).size(), 4u);
    cr_assert_eq(plan_ladder(ladder, 3840, 2160).size(), 4u);
    cr_assert_eq(plan_ladder(ladder, 1920, 1079).size(), 3u); // never upscaled by a pixel
}

Test(ladder, portrait_rungs_are_named_by_their_short_side) {
    auto r = plan_ladder(ladder, 720, 1280);
    cr_assert_eq(r.size(), 3u);
    cr_assert(r[0].width == 720 && r[0].height == 1280);
    cr_assert(r[2].width == 360 && r[2].height == 640);
    auto phone = plan_ladder(ladder, 360, 640);
    cr_assert_eq(phone.size(), 1u);
    cr_assert(phone[0].name == "360p" && phone[0].width == 360 && phone[0].height == 640);
}

Test(ladder, a_small_source_gets_one_rung_of_its_own_size) {
    auto r = plan_ladder(ladder, 320, 240);
    cr_assert_eq(r.size(), 1u);
    cr_assert_eq(r[0].name, "240p");
    cr_assert(r[0].width == 320 && r[0].height == 240);
    // 800 kbps for 360 lines, scaled by the pixels: 800 * (240/360)^2 = 356.
    cr_assert_eq(r[0].video_kbps, 356u);
    auto odd = plan_ladder(ladder, 175, 97); // odd sizes become even, never larger
    cr_assert(odd[0].height == 96 && odd[0].width % 2 == 0, "%ux%u", odd[0].width, odd[0].height);
    cr_assert(odd[0].video_kbps >= 100u);
    cr_assert(plan_ladder(ladder, 0, 0).empty());
}

Test(ladder, sizes_and_intervals) {
    cr_assert_eq(even_size(853.3), 854u);
    cr_assert_eq(even_size(0.2), 2u);
    Size t = fit_width(1920, 1080, 160);
    cr_assert(t.width == 160 && t.height == 90);
    Size p = fit_width(640, 360, 1280); // never wider than the source
    cr_assert(p.width == 640 && p.height == 360);
    cr_assert_eq(keyframe_interval(30, 2), 60u);
    cr_assert_eq(keyframe_interval(30000.0 / 1001, 2), 60u);
    cr_assert_eq(keyframe_interval(25, 2), 50u);
    cr_assert_eq(keyframe_interval(0, 2), 60u);
}

Test(ladder, codec_string_from_the_sps) {
    const std::uint8_t sps[] = {0x67, 0x64, 0x00, 0x1f, 0xac};
    cr_assert_eq(avc1_codec(sps, sizeof sps), "avc1.64001f");
    const std::uint8_t pps[] = {0x68, 0xee, 0x3c, 0x80};
    cr_assert_eq(avc1_codec(pps, sizeof pps), "");
    const std::uint8_t stream[] = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x28, 0xaa};
    cr_assert_eq(avc1_codec_from_annexb(stream, sizeof stream), "avc1.4d4028");
    cr_assert_eq(avc1_codec_from_annexb(stream, 5), "");
}

Test(ladder, orientation_tags) {
    cr_assert_eq(parse_orientation("rotate-90").rotation, 90u);
    cr_assert_eq(parse_orientation("rotate-270").rotation, 270u);
    cr_assert(!parse_orientation("rotate-180").mirrored);
    cr_assert(parse_orientation("flip-rotate-0").mirrored);
    cr_assert_eq(parse_orientation("").rotation, 0u);
    cr_assert_str_eq(flip_direction(parse_orientation("rotate-90")), "90r");
    cr_assert_str_eq(flip_direction(parse_orientation("rotate-270")), "90l");
    cr_assert_str_eq(flip_direction(parse_orientation("rotate-0")), "identity");
    cr_assert_str_eq(flip_direction(parse_orientation("flip-rotate-180")), "vert");
    cr_assert_eq(missing_decoder_caps("gstreamer|1.0|x|H.265 decoder|decoder-video/x-h265, "
                                      "profile=(string)main"),
                 "video/x-h265");
    cr_assert_eq(missing_decoder_caps("gstreamer|1.0|x|y|element-foo"), "");
}

Test(playlists, media_playlist_becomes_vod) {
    std::string written = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n"
                          "#EXT-X-TARGETDURATION:6\n\n#EXTINF:6.0330000000000002,\r\n"
                          "seg00000.ts\n#EXTINF:6,\nseg00001.ts\n#EXTINF:1.5,\nseg00002.ts\n";
    auto segs = parse_media_playlist(written);
    cr_assert_eq(segs.size(), 3u);
    cr_assert_eq(segs[0].uri, "seg00000.ts");
    cr_assert_float_eq(segs[0].duration_seconds, 6.033, 1e-6);
    std::string vod = vod_media_playlist(segs);
    cr_assert(has(vod, "#EXT-X-PLAYLIST-TYPE:VOD\n"));
    cr_assert(has(vod, "#EXT-X-TARGETDURATION:6\n"));
    cr_assert(has(vod, "#EXTINF:6.033,\nseg00000.ts\n"));
    cr_assert(has(vod, "#EXTINF:1.500,\nseg00002.ts\n#EXT-X-ENDLIST\n"));
    cr_assert_eq(parse_media_playlist(vod).size(), 3u);
    // A segment longer than the target once rounded raises the target, as the spec asks.
    cr_assert(has(vod_media_playlist({{"a.ts", 6.6}}), "#EXT-X-TARGETDURATION:7\n"));
}

Test(playlists, master_lists_each_variant) {
    std::string m =
        master_playlist({{"720p/index.m3u8", 3000000, 2900000, 1280, 720, "avc1.64001f,mp4a.40.2"},
                         {"360p/index.m3u8", 900000, 0, 640, 360, "avc1.64001e"}});
    cr_assert(has(m, "#EXTM3U\n"));
    cr_assert(has(m, "#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2900000,"
                     "RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p/index.m3u8\n"));
    cr_assert(has(m, "BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.64001e\"\n360p/"));
}

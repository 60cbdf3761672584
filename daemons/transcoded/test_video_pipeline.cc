// process_video on sources made here with GStreamer (videotestsrc/audiotestsrc, x264enc,
// mp4mux; small and short, so the suite stays fast on two cores), its outputs read back with
// GStreamer: playlists, segment sizes, keyframes, audio or not, rotation, thumbnails,
// progress, and bad inputs refused quickly.
#include "hls_playlist.hh"
#include "test_media_dir.hh"
#include "video_pipeline.hh"

#include <chrono>
#include <cmath>
#include <criterion/criterion.h>
#include <filesystem>
#include <fstream>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

using namespace strata::transcoded;
namespace fs = std::filesystem;

namespace {

fs::path& g_dir = testing::media_dir;

void setup() {
    testing::make_media_dir("strata-video");
}
void teardown() {
    testing::remove_media_dir();
}

// Runs a gst-launch description to its end (at most 60 s).
void run_launch(const std::string& description) {
    GError* err = nullptr;
    GstElement* p = gst_parse_launch(description.c_str(), &err);
    cr_assert(p && !err, "%s: %s", description.c_str(), err ? err->message : "");
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(p);
    GstMessage* m = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    bool ok = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
    if (m) gst_message_unref(m);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    cr_assert(ok, "pipeline failed: %s", description.c_str());
}

struct Source {
    int width = 640, height = 360;
    double seconds = 6;
    bool audio = true;
    bool rotate_90 = false; // as phones tag a portrait video
    bool faststart = false;
};

// mp4mux (1.22) drops image-orientation tags, so the rotation is written the way phones
// write it: the video track header's matrix, rotated 90 degrees clockwise. qtdemux turns it
// into the rotate-90 tag.
void tag_rotate_90(const fs::path& file) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), {});
    auto put32 = [&](std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i)
            bytes[at + i] = char(v >> (24 - 8 * i));
    };
    bool done = false;
    for (auto at = bytes.find("tkhd"); at != std::string::npos; at = bytes.find("tkhd", at + 4)) {
        std::size_t matrix = at + (bytes[at + 4] == 1 ? 56 : 44); // after the version 1 times
        cr_assert(matrix + 44 <= bytes.size());
        bool video = bytes.compare(matrix + 36, 4, std::string(4, '\0')) != 0; // width != 0
        if (!video) continue;
        const std::uint32_t rotate[9] = {0, 0x10000, 0, 0xffff0000, 0, 0, 0, 0, 0x40000000};
        for (int i = 0; i < 9; ++i)
            put32(matrix + 4 * i, rotate[i]);
        done = true;
    }
    cr_assert(done, "no video track header in %s", file.c_str());
    f.seekp(0);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

fs::path make_source(const std::string& name, const Source& s) {
    fs::path out = g_dir / name;
    int frames = int(s.seconds * 30);
    std::ostringstream d;
    d << "videotestsrc num-buffers=" << frames << " pattern=ball ! video/x-raw,width=" << s.width
      << ",height=" << s.height << ",framerate=30/1 ! x264enc speed-preset=ultrafast ! ";
    d << "mux. mp4mux name=mux faststart=" << (s.faststart ? "true" : "false")
      << " ! filesink location=" << out.string();
    if (s.audio)
        d << " audiotestsrc num-buffers=" << int(s.seconds * 48000 / 1024)
          << " ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! mux.";
    run_launch(d.str());
    if (s.rotate_90) tag_rotate_90(out);
    return out;
}

struct Probed {
    bool ok = false;
    unsigned width = 0, height = 0;
    bool has_video = false, has_audio = false;
    std::string orientation;
};

Probed discover(const fs::path& file) {
    Probed p;
    GstDiscoverer* d = gst_discoverer_new(10 * GST_SECOND, nullptr);
    gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
    GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, nullptr);
    g_free(uri);
    if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK) {
        p.ok = true;
        GList* videos = gst_discoverer_info_get_video_streams(info);
        GList* audios = gst_discoverer_info_get_audio_streams(info);
        p.has_video = videos != nullptr;
        p.has_audio = audios != nullptr;
        if (videos) {
            auto* v = static_cast<GstDiscovererVideoInfo*>(videos->data);
            p.width = gst_discoverer_video_info_get_width(v);
            p.height = gst_discoverer_video_info_get_height(v);
            const GstTagList* tags =
                gst_discoverer_stream_info_get_tags(GST_DISCOVERER_STREAM_INFO(v));
            gchar* o = nullptr;
            if (tags && gst_tag_list_get_string(tags, GST_TAG_IMAGE_ORIENTATION, &o)) {
                p.orientation = o;
                g_free(o);
            }
        }
        gst_discoverer_stream_info_list_free(videos);
        gst_discoverer_stream_info_list_free(audios);
    }
    if (info) g_object_unref(info);
    g_object_unref(d);
    return p;
}

// The keyframes' times in a rung's segments, read with tsdemux ! h264parse.
struct Keyframes {
    std::mutex mutex;
    std::vector<double> times;
};
void on_handoff(GstElement*, GstBuffer* b, GstPad*, gpointer data) {
    auto& k = *static_cast<Keyframes*>(data);
    if (!GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT) && GST_BUFFER_PTS_IS_VALID(b)) {
        std::lock_guard lock(k.mutex);
        k.times.push_back(double(GST_BUFFER_PTS(b)) / GST_SECOND);
    }
}
std::vector<double> keyframes(const fs::path& segment) {
    Keyframes k;
    std::string d = "filesrc location=" + segment.string() +
                    " ! tsdemux ! h264parse ! fakesink name=sink signal-handoffs=true";
    GstElement* p = gst_parse_launch(d.c_str(), nullptr);
    cr_assert(p);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    g_signal_connect(sink, "handoff", G_CALLBACK(on_handoff), &k);
    gst_object_unref(sink);
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(p);
    GstMessage* m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (m) gst_message_unref(m);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    return k.times;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

int count(const std::vector<OutputFile>& files, const std::string& rendition,
          const std::string& role) {
    int n = 0;
    for (const auto& f : files)
        n += f.rendition == rendition && f.role == role;
    return n;
}

fs::path out_dir(const std::string& name) {
    fs::path d = g_dir / name;
    fs::create_directories(d);
    return d;
}

// process_video's MediaError, and how long it took to come.
struct Refusal {
    bool thrown = false, permanent = false;
    std::string what;
    double seconds = 0;
};
Refusal refusal(const fs::path& input, const VideoOptions& options = {}) {
    Refusal r;
    auto start = std::chrono::steady_clock::now();
    try {
        process_video(input, out_dir(input.filename().string() + ".out"), options, nullptr);
    } catch (const MediaError& e) {
        r.thrown = true;
        r.permanent = e.permanent;
        r.what = e.what();
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

} // namespace

TestSuite(video, .init = setup, .fini = teardown, .timeout = 60);

Test(video, ladder_playlists_segments_thumbnails_and_progress) {
    fs::path src = make_source("src.mp4", {640, 360, 6});
    VideoOptions o;
    o.ladder = {{"720p", 720, 2800}, {"360p", 360, 800}, {"240p", 240, 400}, {"180p", 180, 250}};
    o.thumbnail_seconds = 2;
    std::vector<std::pair<double, std::string>> calls;
    fs::path out = out_dir("out");
    VideoResult r = process_video(src, out, o, [&](double percent, const std::string& stage) {
        calls.emplace_back(percent, stage);
    });

    const MediaInfo& m = r.source;
    cr_assert(m.width == 640 && m.height == 360 && m.rotation == 0, "%ux%u", m.width, m.height);
    cr_assert(std::fabs(m.duration_seconds - 6) < 0.2, "%f", m.duration_seconds);
    cr_assert_eq(m.video_codec, "h264");
    cr_assert_eq(m.audio_codec, "aac");
    cr_assert(std::fabs(m.frame_rate - 30) < 0.01);
    cr_assert(m.format == MediaFormat::mp4);

    // The rung above the source is dropped; the others are listed in the master playlist.
    cr_assert(!fs::exists(out / "720p"));
    cr_assert_eq(count(r.files, "hls", "master"), 1);
    std::string master = read_text(out / "master.m3u8");
    struct Want {
        const char* name;
        unsigned w, h;
    };
    for (Want want : {Want{"360p", 640, 360}, Want{"240p", 426, 240}, Want{"180p", 320, 180}}) {
        std::string res = std::to_string(want.w) + "x" + std::to_string(want.h);
        cr_assert(has(master, "RESOLUTION=" + res + ",CODECS=\"avc1.") &&
                      has(master, "mp4a.40.2\"\n" + std::string(want.name) + "/index.m3u8\n"),
                  "%s\n%s", want.name, master.c_str());
        cr_assert_eq(count(r.files, want.name, "playlist"), 1);

        // VOD playlists whose segments add up to the source, each of the rung's size.
        std::string playlist = read_text(out / want.name / "index.m3u8");
        cr_assert(has(playlist, "#EXT-X-PLAYLIST-TYPE:VOD\n"), "%s", playlist.c_str());
        cr_assert(has(playlist, "#EXT-X-ENDLIST\n"));
        auto segments = parse_media_playlist(playlist);
        cr_assert_eq(segments.size(), 1u, "%s", playlist.c_str()); // 6 s in 6 s segments
        double total = 0;
        for (const auto& s : segments)
            total += s.duration_seconds;
        cr_assert(std::fabs(total - m.duration_seconds) < 0.5, "%f", total);
        cr_assert_eq(count(r.files, want.name, "segment"), int(segments.size()));
        Probed seg = discover(out / want.name / segments[0].uri);
        cr_assert(seg.ok && seg.has_audio && seg.width == want.w && seg.height == want.h,
                  "%s: %ux%u", want.name, seg.width, seg.height);

        // Keyframes every 2 s exactly (60 frames): scene cuts do not add any.
        auto keys = keyframes(out / want.name / segments[0].uri);
        cr_assert_eq(keys.size(), 3u, "%s: %zu keyframes", want.name, keys.size());
        for (std::size_t i = 1; i < keys.size(); ++i)
            cr_assert(std::fabs(keys[i] - keys[i - 1] - 2) < 0.02, "%f", keys[i] - keys[i - 1]);
    }
    cr_assert(has(master, "BANDWIDTH="));

    // Poster at the source's size; a thumbnail every 2 s, 160 wide.
    Probed poster = discover(out / "poster.jpg");
    cr_assert(poster.width == 640 && poster.height == 360, "%ux%u", poster.width, poster.height);
    int thumbs = count(r.files, "thumbnails", "image");
    cr_assert(thumbs == 3, "%d thumbnails", thumbs);
    double expected = 0;
    for (const auto& f : r.files)
        if (f.rendition == "thumbnails") {
            cr_assert(fs::exists(out / f.path) && f.width == 160 && f.height == 90);
            cr_assert(std::fabs(f.start_seconds - expected) < 0.05, "%f", f.start_seconds);
            expected += 2;
        }
    Probed thumb = discover(out / "thumbs" / "00002.jpg");
    cr_assert(thumb.width == 160 && thumb.height == 90);

    // Progress: from probing to done, never going back.
    cr_assert(calls.size() >= 3);
    cr_assert_eq(calls.front().second, "probing");
    cr_assert(calls.back().first == 100);
    bool encoding = false;
    for (std::size_t i = 1; i < calls.size(); ++i) {
        cr_assert(calls[i].first >= calls[i - 1].first, "%f after %f", calls[i].first,
                  calls[i - 1].first);
        encoding |= calls[i].second == "encoding" && calls[i].first > 2 && calls[i].first < 97;
    }
    cr_assert(encoding, "no progress reported while encoding");
}

Test(video, a_small_silent_source_gets_one_rung_and_no_audio) {
    fs::path src = make_source("small.mp4", {320, 180, 5, false});
    fs::path out = out_dir("out");
    VideoResult r = process_video(src, out, VideoOptions{}, nullptr);
    cr_assert_eq(r.source.audio_codec, "");
    // Smaller than every rung of the default ladder: one rung of its own size.
    std::string master = read_text(out / "master.m3u8");
    cr_assert(has(master, "RESOLUTION=320x180,CODECS=\"avc1."), "%s", master.c_str());
    cr_assert(!has(master, "mp4a"), "%s", master.c_str());
    cr_assert(fs::exists(out / "180p" / "index.m3u8"));
    Probed seg = discover(out / "180p" / "seg00000.ts");
    cr_assert(seg.ok && seg.has_video && !seg.has_audio);
    // One thumbnail every 10 s: one for 5 s.
    cr_assert_eq(count(r.files, "thumbnails", "image"), 1);
}

Test(video, the_rotation_tag_is_honoured) {
    fs::path src = make_source("phone.mp4", {640, 360, 5, true, true});
    Probed in = discover(src);
    cr_assert_eq(in.orientation, "rotate-90", "qtdemux does not see the rotation");
    fs::path out = out_dir("out");
    VideoResult r = process_video(src, out, VideoOptions{}, nullptr);
    cr_assert(r.source.width == 360 && r.source.height == 640 && r.source.rotation == 90,
              "%ux%u %u", r.source.width, r.source.height, r.source.rotation);
    // A portrait 360p: 360 wide, upright.
    Probed seg = discover(out / "360p" / "seg00000.ts");
    cr_assert(seg.width == 360 && seg.height == 640, "%ux%u", seg.width, seg.height);
    Probed poster = discover(out / "poster.jpg");
    cr_assert(poster.width == 360 && poster.height == 640);
    cr_assert(has(read_text(out / "master.m3u8"), "RESOLUTION=360x640"));
}

Test(video, bad_inputs_are_refused_quickly) {
    fs::path empty = g_dir / "empty.mp4";
    std::ofstream(empty).close();
    fs::path text = g_dir / "notes.txt";
    std::ofstream(text) << "not a video at all\n";
    fs::path noise = g_dir / "noise.bin";
    {
        std::ofstream out(noise, std::ios::binary);
        unsigned x = 12345;
        for (int i = 0; i < 200000; ++i)
            out.put(char((x = x * 1103515245 + 12345) >> 16));
    }
    fs::path good = make_source("good.mp4", {320, 180, 5});
    // mp4mux writes its index last: without its second half the file has none.
    fs::path cut = g_dir / "cut.mp4";
    fs::copy_file(good, cut);
    fs::resize_file(cut, fs::file_size(good) / 2);
    fs::path audio = g_dir / "audio.mp4";
    run_launch("audiotestsrc num-buffers=100 ! avenc_aac ! mp4mux ! filesink location=" +
               audio.string());

    for (const fs::path& p : {empty, text, noise, cut, audio}) {
        Refusal r = refusal(p);
        cr_assert(r.thrown && r.permanent, "%s: %s", p.filename().c_str(), r.what.c_str());
        cr_assert(r.seconds < 10, "%s took %f s", p.filename().c_str(), r.seconds);
    }
    cr_assert(has(refusal(audio).what, "no video"));
    cr_assert(has(refusal(empty).what, "empty"));
    cr_assert(has(refusal(cut).what, "truncated"));

    // Limits are checked from the probe, before the video is decoded.
    VideoOptions shorter;
    shorter.max_duration_seconds = 2;
    Refusal longer = refusal(good, shorter);
    cr_assert(longer.thrown && longer.permanent && has(longer.what, "allowed"), "%s",
              longer.what.c_str());
    VideoOptions fewer;
    fewer.max_pixels = 320 * 180 - 1;
    Refusal larger = refusal(good, fewer);
    cr_assert(larger.thrown && larger.permanent && has(larger.what, "pixels"), "%s",
              larger.what.c_str());
    cr_assert(!fs::exists(g_dir / "good.mp4.out" / "master.m3u8"));

    Refusal missing = refusal(g_dir / "no-such-file.mp4");
    cr_assert(missing.thrown && !missing.permanent);
}

Test(video, a_file_cut_in_its_media_gives_what_could_be_decoded) {
    // Index first (faststart), media cut at 60%: the demuxer reaches the end of the data.
    fs::path good = make_source("fast.mp4", {320, 180, 6, true, false, true});
    fs::path cut = g_dir / "fastcut.mp4";
    fs::copy_file(good, cut);
    fs::resize_file(cut, fs::file_size(good) * 6 / 10);
    auto start = std::chrono::steady_clock::now();
    std::string outcome;
    try {
        VideoResult r = process_video(cut, out_dir("out"), VideoOptions{}, nullptr);
        double hls = 0;
        for (const auto& f : r.files)
            if (f.role == "playlist") hls = f.duration_seconds;
        cr_assert(hls > 0 && hls < 6, "%f s of HLS", hls);
        outcome = "ok";
    } catch (const MediaError& e) {
        outcome = e.what();
        cr_assert(e.permanent, "%s", e.what());
    }
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    cr_assert(took < 20, "%f s", took);
    cr_log_info("cut faststart file: %s", outcome.c_str());
}

Test(video, a_codec_without_a_decoder_is_unsupported) {
    fs::path src = make_source("nodecoder.mp4", {320, 180, 3});
    // This test's process only: no H.264 decoder may be picked.
    for (const char* name : {"avdec_h264", "openh264dec"})
        if (GstElementFactory* f = gst_element_factory_find(name)) {
            gst_plugin_feature_set_rank(GST_PLUGIN_FEATURE(f), GST_RANK_NONE);
            gst_object_unref(f);
        }
    Refusal r = refusal(src);
    cr_assert(r.thrown && r.permanent, "%s", r.what.c_str());
    cr_assert(has(r.what, "unsupported codec video/x-h264"), "%s", r.what.c_str());
    cr_assert(r.seconds < 10);
}

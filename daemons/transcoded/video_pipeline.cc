#include "video_pipeline.hh"

#include "gst_build.hh"
#include "hls_playlist.hh"
#include "text_file.hh"
#include "video_graph.hh"
#include "video_probe.hh"

#include <algorithm>
#include <cmath>
#include <gst/gst.h>

namespace strata::transcoded {
namespace {

namespace fs = std::filesystem;
constexpr const char* playlist_type = "application/vnd.apple.mpegurl";
constexpr unsigned poster_max_width = 1280;

void check_options(const VideoOptions& o) {
    auto bad = [](const std::string& why) { return MediaError("video options: " + why, false); };
    if (o.ladder.empty()) throw bad("empty ladder");
    if (!(o.keyframe_seconds > 0) || !(o.segment_seconds >= 1)) throw bad("keyframe/segment");
    if (!(o.thumbnail_seconds > 0) || o.thumbnail_width < 2) throw bad("thumbnails");
    if (o.audio_kbps == 0) throw bad("audio_kbps");
    for (const auto& r : o.ladder)
        if (r.name.empty() || r.name.find('/') != std::string::npos || r.video_kbps == 0)
            throw bad("rung " + r.name);
}

// One rung's playlist as hlssink2 wrote it, rewritten as VOD; its files listed in `files`.
HlsVariant finish_rung(const fs::path& out_dir, const PlannedRung& r, const std::string& codecs,
                       double segment_seconds, std::vector<OutputFile>& files) {
    fs::path playlist = fs::path(r.name) / "index.m3u8";
    auto segments = parse_media_playlist(read_text_file(out_dir / playlist));
    if (segments.empty()) throw MediaError("rung " + r.name + ": no segment was written");
    double start = 0, peak = 0, peak_any = 0;
    std::uintmax_t total_bytes = 0;
    std::vector<OutputFile> segment_files;
    for (const auto& s : segments) {
        fs::path rel = fs::path(r.name) / s.uri;
        std::error_code ec;
        auto bytes = fs::file_size(out_dir / rel, ec);
        if (ec) throw MediaError("rung " + r.name + ": missing segment " + s.uri, false);
        total_bytes += bytes;
        double bps = s.duration_seconds > 0 ? bytes * 8.0 / s.duration_seconds : 0;
        peak_any = std::max(peak_any, bps);
        // A short last segment is mostly its keyframe: its rate is not the stream's peak.
        if (s.duration_seconds >= segment_seconds / 2) peak = std::max(peak, bps);
        segment_files.push_back(
            {r.name, "segment", rel, "video/mp2t", r.width, r.height, start, s.duration_seconds});
        start += s.duration_seconds;
    }
    write_text_file(out_dir / playlist, vod_media_playlist(segments));
    files.push_back({r.name, "playlist", playlist, playlist_type, r.width, r.height, 0, start});
    files.insert(files.end(), segment_files.begin(), segment_files.end());
    HlsVariant v;
    v.uri = playlist.string();
    v.bandwidth = static_cast<unsigned long>(std::ceil(peak > 0 ? peak : peak_any));
    v.average_bandwidth = start > 0 ? static_cast<unsigned long>(total_bytes * 8.0 / start) : 0;
    v.width = r.width;
    v.height = r.height;
    v.codecs = codecs;
    return v;
}

} // namespace

VideoResult process_video(const fs::path& input, const fs::path& out_dir,
                          const VideoOptions& options, const ProgressFn& progress) {
    auto report = [&](double percent, const char* stage) {
        if (progress) progress(percent, stage);
    };
    check_options(options);
    init_gstreamer();
    report(0, "probing");
    VideoProbe probe = probe_video(input);
    const MediaInfo& info = probe.info;
    // Refused from the probe alone, before anything is decoded in full.
    if (std::uint64_t(probe.coded_width) * probe.coded_height > options.max_pixels)
        throw MediaError("frames of " + std::to_string(probe.coded_width) + "x" +
                         std::to_string(probe.coded_height) + " exceed the " +
                         std::to_string(options.max_pixels) + " pixels allowed");
    if (info.duration_seconds > options.max_duration_seconds)
        throw MediaError("the video lasts " + std::to_string(info.duration_seconds) +
                         " s, more than the " + std::to_string(options.max_duration_seconds) +
                         " s allowed");
    report(2, "probing");

    VideoGraphPlan plan;
    plan.input = input;
    plan.out_dir = out_dir;
    plan.has_audio = probe.has_audio;
    plan.flip = flip_direction({info.rotation, info.mirrored});
    plan.rungs = plan_ladder(options.ladder, info.width, info.height);
    plan.preset = options.preset;
    plan.keyframe_frames = keyframe_interval(info.frame_rate, options.keyframe_seconds);
    plan.audio_kbps = options.audio_kbps;
    plan.segment_seconds = static_cast<unsigned>(std::lround(options.segment_seconds));
    plan.thumbnail = fit_width(info.width, info.height, options.thumbnail_width);
    plan.poster = fit_width(info.width, info.height, poster_max_width);
    plan.thumbnail_seconds = options.thumbnail_seconds;
    plan.poster_at_seconds = info.duration_seconds * 0.1;
    plan.duration_seconds = info.duration_seconds;
    plan.max_duration_seconds = options.max_duration_seconds;
    std::error_code ec;
    for (const auto& r : plan.rungs)
        fs::create_directories(out_dir / r.name, ec);
    fs::create_directories(out_dir / "thumbs", ec);
    if (ec) throw MediaError("cannot create the output folders: " + ec.message(), false);

    VideoGraphResult graph = run_video_graph(plan, progress);

    report(97, "playlists");
    VideoResult result;
    result.source = info;
    std::vector<HlsVariant> variants;
    std::vector<OutputFile> rung_files;
    for (std::size_t i = 0; i < plan.rungs.size(); ++i) {
        if (graph.codecs[i].empty())
            throw MediaError("rung " + plan.rungs[i].name + ": no H.264 SPS seen", false);
        std::string codecs = graph.codecs[i] + (probe.has_audio ? ",mp4a.40.2" : "");
        variants.push_back(
            finish_rung(out_dir, plan.rungs[i], codecs, options.segment_seconds, rung_files));
    }
    double hls_seconds = 0;
    for (const auto& f : rung_files)
        if (f.role == "playlist") hls_seconds = std::max(hls_seconds, f.duration_seconds);
    if (result.source.duration_seconds <= 0) result.source.duration_seconds = hls_seconds;
    write_text_file(out_dir / "master.m3u8", master_playlist(variants));
    result.files.push_back({"hls", "master", "master.m3u8", playlist_type, plan.rungs[0].width,
                            plan.rungs[0].height, 0, hls_seconds});
    result.files.insert(result.files.end(), rung_files.begin(), rung_files.end());

    if (!fs::exists(out_dir / "poster.jpg")) throw MediaError("no poster was written", false);
    result.files.push_back({"poster", "image", "poster.jpg", "image/jpeg", plan.poster.width,
                            plan.poster.height, 0, 0});
    for (std::size_t i = 0; i < graph.thumbnail_times.size(); ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "thumbs/%05zu.jpg", i);
        if (!fs::exists(out_dir / name)) break; // the last may have been cut off by an error
        result.files.push_back({"thumbnails", "image", name, "image/jpeg", plan.thumbnail.width,
                                plan.thumbnail.height, graph.thumbnail_times[i],
                                options.thumbnail_seconds});
    }
    report(100, "done");
    return result;
}

} // namespace strata::transcoded

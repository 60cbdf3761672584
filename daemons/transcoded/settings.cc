#include "settings.hh"

#include <charconv>
#include <sstream>
#include <stdexcept>

namespace strata::transcoded {

namespace {

const char* const kPresets[] = {"ultrafast", "superfast", "veryfast", "faster",  "fast",
                                "medium",    "slow",      "slower",   "veryslow"};

std::string check_preset(const config::Value& v) {
    const auto& p = std::get<std::string>(v);
    for (const char* known : kPresets)
        if (p == known) return "";
    return "must be an x264 preset: ultrafast, superfast, veryfast, faster, fast, medium, "
           "slow, slower or veryslow";
}

std::string check_ladder(const config::Value& v) {
    const auto& rungs = std::get<std::vector<std::string>>(v);
    if (rungs.empty()) return "must name at least one rung";
    if (rungs.size() > 8) return "has at most 8 rungs";
    for (std::size_t i = 0; i < rungs.size(); ++i) {
        if (auto why = check_rung(rungs[i]); !why.empty()) return "\"" + rungs[i] + "\": " + why;
        for (std::size_t j = 0; j < i; ++j)
            if (parse_rung(rungs[j]).name == parse_rung(rungs[i]).name)
                return "names the rung " + parse_rung(rungs[i]).name + " twice";
    }
    return "";
}

bool parse_unsigned(const std::string& s, unsigned& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

} // namespace

std::string check_rung(const std::string& spec) {
    std::istringstream in(spec);
    std::string name, height, kbps, extra;
    if (!(in >> name >> height >> kbps) || (in >> extra))
        return "a rung is \"NAME HEIGHT KBPS\", e.g. \"720p 720 2800\"";
    if (name.size() > 16 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
        return "a rung's name is 1..16 of [a-z0-9-] (it names a folder of the output)";
    unsigned h = 0, k = 0;
    if (!parse_unsigned(height, h) || h < 90 || h > 4320 || h % 2)
        return "a rung's height is an even number of pixels, 90..4320";
    if (!parse_unsigned(kbps, k) || k < 50 || k > 100000)
        return "a rung's bitrate is 50..100000 kbit/s";
    return "";
}

Rung parse_rung(const std::string& spec) {
    if (auto why = check_rung(spec); !why.empty()) throw std::invalid_argument(why);
    std::istringstream in(spec);
    Rung r;
    in >> r.name >> r.height >> r.video_kbps;
    return r;
}

void extend_schema(config::Schema& s) {
    s.string("metad.socket", "unix:/run/strata/metad.sock", false,
             "where metad listens: results and progress are recorded there");
    s.string("blockd.socket", "unix:/run/strata/blockd.sock", true,
             "where blockd listens: sources are read and renditions stored there");
    s.integer("workers.count", 2, 0, 64, true,
              "jobs run at once, one worker process each; 0: none (jobs wait)");
    s.integer("workers.nice", 10, 0, 19, true,
              "niceness a worker adds to the daemon's (its CPU yields to the other daemons)");
    s.integer("workers.memory_mb", 4096, 0, 1048576, true,
              "address-space limit of a worker, MiB (RLIMIT_AS); 0: none");
    s.integer("workers.job_timeout_seconds", 14400, 10, 172800, true,
              "longest a job may run before its worker is killed");
    s.integer("workers.stall_timeout_seconds", 120, 5, 3600, true,
              "longest a worker may report no progress before it is killed");
    s.integer("jobs.max_attempts", 5, 1, 100, false,
              "attempts of a job that fails transiently before it is dead-lettered");
    s.integer("jobs.retry_backoff_seconds", 30, 1, 3600, false,
              "wait before the second attempt; doubled for each later one, up to an hour");
    s.integer("jobs.max_source_bytes", 64ll << 30, 1, 1ll << 40, true,
              "largest source a job reads; larger ones fail");
    s.string_list("video.ladder",
                  {"1080p 1080 5000", "720p 720 2800", "480p 480 1400", "360p 360 800"}, true,
                  "the ABR ladder, \"NAME HEIGHT KBPS\" per rung; rungs above the source's "
                  "height are dropped",
                  check_ladder);
    s.integer("video.audio_kbps", 128, 32, 512, true, "AAC bitrate of every rung, kbit/s");
    s.integer("video.keyframe_seconds", 2, 1, 10, true,
              "keyframe interval, the same in every rung so that segments align");
    s.integer("video.segment_seconds", 6, 1, 60, true,
              "HLS segment length; a multiple of video.keyframe_seconds");
    s.integer("video.thumbnail_seconds", 10, 1, 3600, true,
              "one scrubbing thumbnail every so many seconds");
    s.integer("video.thumbnail_width", 160, 32, 1920, true, "width of the thumbnails, pixels");
    s.string("video.preset", "veryfast", true, "x264 speed preset", {}, check_preset);
    s.integer("video.max_pixels", 7680ll * 4320, 1, 1ll << 32, true,
              "largest frame (width x height) accepted; larger videos fail");
    s.integer("video.max_duration_seconds", 14400, 1, 604800, true,
              "longest video accepted; longer ones fail");
    s.integer("image.max_width", 1920, 16, 16384, true, "display rendition: fit in this width");
    s.integer("image.max_height", 1080, 16, 16384, true, "display rendition: fit in this height");
    s.integer("image.quality", 85, 1, 100, true, "JPEG and WebP quality of image renditions");
    s.integer("image.thumbnail_size", 300, 16, 2048, true,
              "side of the square thumbnail (cover crop), pixels");
    s.integer("image.max_pixels", 50000000, 1, 1ll << 32, true,
              "largest image (width x height) accepted, read from its header before decoding");
}

Settings settings_of(const config::Config& c) {
    Settings s;
    s.metad = c.string("metad.socket");
    s.workers = static_cast<unsigned>(c.integer("workers.count"));
    s.nice = static_cast<int>(c.integer("workers.nice"));
    s.memory_bytes = static_cast<std::uint64_t>(c.integer("workers.memory_mb")) << 20;
    s.job_timeout = std::chrono::seconds(c.integer("workers.job_timeout_seconds"));
    s.stall_timeout = std::chrono::seconds(c.integer("workers.stall_timeout_seconds"));
    s.max_attempts = static_cast<unsigned>(c.integer("jobs.max_attempts"));
    s.retry_backoff = std::chrono::seconds(c.integer("jobs.retry_backoff_seconds"));
    auto& p = s.pipeline;
    p.blockd = c.string("blockd.socket");
    p.max_source_bytes = static_cast<std::uint64_t>(c.integer("jobs.max_source_bytes"));
    p.video.ladder.clear();
    for (const auto& r : c.string_list("video.ladder"))
        p.video.ladder.push_back(parse_rung(r));
    p.video.audio_kbps = static_cast<unsigned>(c.integer("video.audio_kbps"));
    p.video.keyframe_seconds = static_cast<double>(c.integer("video.keyframe_seconds"));
    p.video.segment_seconds = static_cast<double>(c.integer("video.segment_seconds"));
    if (c.integer("video.segment_seconds") % c.integer("video.keyframe_seconds"))
        throw std::invalid_argument("video.segment_seconds must be a multiple of "
                                    "video.keyframe_seconds (segments start on keyframes)");
    p.video.thumbnail_seconds = static_cast<double>(c.integer("video.thumbnail_seconds"));
    p.video.thumbnail_width = static_cast<unsigned>(c.integer("video.thumbnail_width"));
    p.video.preset = c.string("video.preset");
    p.video.max_pixels = static_cast<std::uint64_t>(c.integer("video.max_pixels"));
    p.video.max_duration_seconds = static_cast<double>(c.integer("video.max_duration_seconds"));
    p.image.max_width = static_cast<unsigned>(c.integer("image.max_width"));
    p.image.max_height = static_cast<unsigned>(c.integer("image.max_height"));
    p.image.quality = static_cast<unsigned>(c.integer("image.quality"));
    p.image.thumbnail_size = static_cast<unsigned>(c.integer("image.thumbnail_size"));
    p.image.max_pixels = static_cast<std::uint64_t>(c.integer("image.max_pixels"));
    return s;
}

nlohmann::json to_json(const PipelineSettings& p) {
    nlohmann::json ladder = nlohmann::json::array();
    for (const auto& r : p.video.ladder)
        ladder.push_back({{"name", r.name}, {"height", r.height}, {"kbps", r.video_kbps}});
    const auto& v = p.video;
    const auto& i = p.image;
    return {{"blockd", p.blockd},
            {"max_source_bytes", p.max_source_bytes},
            {"video",
             {{"ladder", ladder},
              {"audio_kbps", v.audio_kbps},
              {"keyframe_seconds", v.keyframe_seconds},
              {"segment_seconds", v.segment_seconds},
              {"thumbnail_seconds", v.thumbnail_seconds},
              {"thumbnail_width", v.thumbnail_width},
              {"preset", v.preset},
              {"max_pixels", v.max_pixels},
              {"max_duration_seconds", v.max_duration_seconds}}},
            {"image",
             {{"max_width", i.max_width},
              {"max_height", i.max_height},
              {"quality", i.quality},
              {"thumbnail_size", i.thumbnail_size},
              {"max_pixels", i.max_pixels}}}};
}

PipelineSettings pipeline_settings_of(const nlohmann::json& j) {
    try {
        PipelineSettings p;
        p.blockd = j.at("blockd").get<std::string>();
        p.max_source_bytes = j.at("max_source_bytes").get<std::uint64_t>();
        const auto& v = j.at("video");
        p.video.ladder.clear();
        for (const auto& r : v.at("ladder"))
            p.video.ladder.push_back({r.at("name").get<std::string>(),
                                      r.at("height").get<unsigned>(),
                                      r.at("kbps").get<unsigned>()});
        p.video.audio_kbps = v.at("audio_kbps").get<unsigned>();
        p.video.keyframe_seconds = v.at("keyframe_seconds").get<double>();
        p.video.segment_seconds = v.at("segment_seconds").get<double>();
        p.video.thumbnail_seconds = v.at("thumbnail_seconds").get<double>();
        p.video.thumbnail_width = v.at("thumbnail_width").get<unsigned>();
        p.video.preset = v.at("preset").get<std::string>();
        p.video.max_pixels = v.at("max_pixels").get<std::uint64_t>();
        p.video.max_duration_seconds = v.at("max_duration_seconds").get<double>();
        const auto& i = j.at("image");
        p.image.max_width = i.at("max_width").get<unsigned>();
        p.image.max_height = i.at("max_height").get<unsigned>();
        p.image.quality = i.at("quality").get<unsigned>();
        p.image.thumbnail_size = i.at("thumbnail_size").get<unsigned>();
        p.image.max_pixels = i.at("max_pixels").get<std::uint64_t>();
        return p;
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("worker settings: ") + e.what());
    }
}

} // namespace strata::transcoded

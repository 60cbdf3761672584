#include "worker_main.hh"

#include "blockd_files.hh"
#include "gst_build.hh"
#include "job.hh"
#include "publish.hh"
#include "settings.hh"

#include <algorithm>
#include <gst/gst.h>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>

namespace strata::transcoded {

namespace {

// One protocol line, flushed at once: the daemon's watchdog counts on it.
void say(std::ostream& out, const nlohmann::json& j) {
    static std::mutex mu; // GStreamer threads report progress too
    std::lock_guard lock(mu);
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
}

struct Processed {
    MediaInfo source;
    std::vector<OutputFile> files;
};

// Sniffs `input` and runs its pipeline; progress goes to `progress` scaled into [lo, hi].
Processed process(const std::filesystem::path& input, const std::filesystem::path& out_dir,
                  const PipelineSettings& settings, const ProgressFn& progress, double lo,
                  double hi) {
    MediaFormat format = sniff_format(input);
    if (format == MediaFormat::empty) throw MediaError("the file is empty (0 bytes)");
    if (format == MediaFormat::unknown)
        throw MediaError("not an image or video this release reads (JPEG, PNG, WebP, GIF, "
                         "MP4/MOV, Matroska/WebM, MPEG-TS, AVI, Ogg)");
    auto scaled = [&](double pct, const std::string& stage) {
        progress(lo + (hi - lo) * std::clamp(pct, 0.0, 100.0) / 100.0, stage);
    };
    if (is_image_format(format)) {
        auto r = process_image(input, out_dir, settings.image, scaled);
        return {r.source, r.files};
    }
    auto r = process_video(input, out_dir, settings.video, scaled);
    return {r.source, r.files};
}

} // namespace

int run_worker(std::istream& in, std::ostream& out) {
    std::filesystem::path work;
    try {
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto j = nlohmann::json::parse(text);
        Job job = parse_job(j.at("job"));
        PipelineSettings settings = pipeline_settings_of(j.at("settings"));
        work = j.at("work_dir").get<std::string>();
        init_gstreamer();
        std::filesystem::remove_all(work);
        std::filesystem::create_directories(work / "out");
        std::mutex mu;   // pipelines may report from their own threads
        double last = 0; // percent last reported
        std::string stage = "fetching";
        auto progress = [&](double pct, const std::string& what) {
            std::lock_guard lock(mu);
            last = pct;
            stage = what;
            say(out, {{"progress", pct}, {"stage", what}});
        };
        progress(0, "fetching");
        // A long transfer ticks too: fetching moves 0..2 %, a stored file repeats the last.
        BlockdFiles blockd(settings.blockd, [&](double fraction) {
            std::unique_lock lock(mu);
            auto [pct, what] =
                std::pair(stage == "fetching" ? 2 * std::max(fraction, 0.0) : last, stage);
            lock.unlock();
            progress(pct, what);
        });
        blockd.fetch(job.source, work / "source", settings.max_source_bytes);
        auto done = process(work / "source", work / "out", settings, progress, 2, 90);
        progress(90, "storing");
        std::size_t stored = 0, total = std::max<std::size_t>(done.files.size(), 1);
        auto renditions =
            publish(done.source, job.source, done.files, work / "out",
                    [&](const std::filesystem::path& f, const std::string& type) {
                        auto id = blockd.store(f, type);
                        progress(90 + 10.0 * double(++stored) / double(total), "storing");
                        return id;
                    });
        std::filesystem::remove_all(work);
        say(out, {{"result", {{"renditions", renditions}, {"source", to_json(done.source)}}}});
        return 0;
    } catch (const MediaError& e) {
        say(out, {{"error", e.what()}, {"permanent", e.permanent}});
    } catch (const std::invalid_argument& e) { // a job or settings the daemon should not send
        say(out, {{"error", std::string("bad job: ") + e.what()}, {"permanent", true}});
    } catch (const std::exception& e) {
        say(out, {{"error", e.what()}, {"permanent", false}});
    }
    std::error_code ec;
    if (!work.empty()) std::filesystem::remove_all(work, ec);
    return 1;
}

int run_process(const std::filesystem::path& input, const std::filesystem::path& out_dir,
                std::ostream& out, std::ostream& err) {
    try {
        init_gstreamer();
        std::filesystem::create_directories(out_dir);
        if (!std::filesystem::is_empty(out_dir))
            throw MediaError(out_dir.string() + " is not empty", false);
        auto done = process(
            input, out_dir, PipelineSettings{}, [](double, const std::string&) {}, 0, 100);
        nlohmann::json files = nlohmann::json::array();
        for (const auto& f : done.files)
            files.push_back({{"rendition", f.rendition},
                             {"role", f.role},
                             {"path", f.path.string()},
                             {"type", f.media_type},
                             {"width", f.width},
                             {"height", f.height}});
        out << nlohmann::json{{"source", to_json(done.source)}, {"files", files}}.dump(2) << '\n';
        return 0;
    } catch (const std::exception& e) {
        err << "strata-transcoded: " << input.string() << ": " << e.what() << '\n';
        return 1;
    }
}

} // namespace strata::transcoded

// The transcode benchmark's stand-in for `strata-transcoded --process SOURCE OUTDIR`: runs
// process_video with the default VideoOptions and prints the result as JSON.
#include "daemons/transcoded/video_pipeline.hh"

#include <cstdio>
#include <nlohmann/json.hpp>

using namespace strata::transcoded;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: transcode_driver SOURCE OUTDIR\n");
        return 2;
    }
    try {
        auto r = process_video(argv[1], argv[2], VideoOptions{}, [](double, const std::string&) {});
        nlohmann::json files = nlohmann::json::array();
        for (const auto& f : r.files)
            files.push_back({{"rendition", f.rendition},
                             {"role", f.role},
                             {"path", f.path.string()},
                             {"width", f.width},
                             {"height", f.height},
                             {"start", f.start_seconds},
                             {"duration", f.duration_seconds}});
        const MediaInfo& m = r.source;
        nlohmann::json out = {{"source",
                               {{"width", m.width},
                                {"height", m.height},
                                {"rotation", m.rotation},
                                {"duration", m.duration_seconds},
                                {"video_codec", m.video_codec},
                                {"audio_codec", m.audio_codec},
                                {"frame_rate", m.frame_rate}}},
                              {"files", files}};
        std::printf("%s\n", out.dump().c_str());
        return 0;
    } catch (const MediaError& e) {
        std::printf("%s\n",
                    nlohmann::json{{"error", e.what()}, {"permanent", e.permanent}}.dump().c_str());
        return 1;
    }
}

#include "publish.hh"

#include "text_file.hh"

#include <cmath>
#include <map>
#include <sstream>

namespace strata::transcoded {

namespace {

std::uint64_t size_of(const std::filesystem::path& p) {
    std::error_code ec;
    auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
}

nlohmann::json image_rendition(const OutputFile& f, const std::string& id,
                               const std::filesystem::path& out_dir) {
    return {{"name", f.rendition}, {"type", f.media_type}, {"manifest", id},
            {"width", f.width},    {"height", f.height},   {"bytes", size_of(out_dir / f.path)}};
}

} // namespace

nlohmann::json to_json(const MediaInfo& i) {
    nlohmann::json j = {{"format", format_name(i.format)},
                        {"width", i.width},
                        {"height", i.height},
                        {"rotation", i.rotation}};
    if (i.mirrored) j["mirrored"] = true;
    if (i.duration_seconds > 0) j["duration"] = i.duration_seconds;
    if (!i.video_codec.empty()) j["video_codec"] = i.video_codec;
    if (!i.audio_codec.empty()) j["audio_codec"] = i.audio_codec;
    if (i.frame_rate > 0) j["frame_rate"] = i.frame_rate;
    return j;
}

std::string rewrite_playlist(const std::string& text,
                             const std::function<std::string(const std::string&)>& address) {
    std::string out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty() && line.front() != '#') {
            std::string id = address(line);
            if (id.empty())
                throw MediaError("a playlist names " + line + ", which the pipeline did not write",
                                 false);
            line = id;
        }
        out += line;
        out += '\n';
    }
    return out;
}

nlohmann::json publish(const MediaInfo& source, const std::string& source_id,
                       const std::vector<OutputFile>& files, const std::filesystem::path& out_dir,
                       const StoreFn& store) {
    nlohmann::json src = to_json(source);
    src["name"] = "source";
    src["manifest"] = source_id;
    nlohmann::json renditions = nlohmann::json::array({src});

    // Segments first: the playlists name their addresses.
    std::map<std::filesystem::path, std::string> address; // path in out_dir -> content id
    // Per rung, its segments' addresses alone (their durations are in the playlist): a
    // 4-hour ladder stays well under metad's default http.max_body_bytes.
    std::map<std::string, nlohmann::json> rungs; // rung name -> its segments' addresses
    std::map<std::string, double> seconds;       // rung name -> its length
    for (const auto& f : files)
        if (f.role == "segment" || f.role == "init") {
            address[f.path.lexically_normal()] = store(out_dir / f.path, f.media_type);
            if (f.role == "segment") {
                rungs[f.rendition].push_back(address[f.path.lexically_normal()]);
                seconds[f.rendition] += f.duration_seconds;
            }
        }
    auto store_playlist = [&](const OutputFile& f) {
        auto dir = f.path.parent_path();
        std::string text =
            rewrite_playlist(read_text_file(out_dir / f.path), [&](const std::string& uri) {
                auto it = address.find((dir / uri).lexically_normal());
                return it == address.end() ? std::string() : it->second;
            });
        write_text_file(out_dir / f.path, text);
        return address[f.path.lexically_normal()] = store(out_dir / f.path, f.media_type);
    };
    std::vector<std::string> rung_names;
    for (const auto& f : files)
        if (f.role == "playlist") {
            std::string id = store_playlist(f);
            rung_names.push_back(f.rendition);
            renditions.push_back({{"name", f.rendition},
                                  {"type", f.media_type},
                                  {"manifest", id},
                                  {"width", f.width},
                                  {"height", f.height},
                                  {"duration", std::round(seconds[f.rendition] * 1000) / 1000},
                                  {"segments", rungs[f.rendition]}});
        }
    for (const auto& f : files)
        if (f.role == "master") {
            nlohmann::json master = {{"name", f.rendition},
                                     {"type", f.media_type},
                                     {"manifest", store_playlist(f)},
                                     {"rungs", rung_names}};
            renditions.insert(renditions.begin() + 1, std::move(master));
        }
    // Images: one rendition each, except the scrubbing strip, which is one list of frames.
    nlohmann::json frames = nlohmann::json::array();
    unsigned strip_w = 0, strip_h = 0;
    for (const auto& f : files) {
        if (f.role != "image") continue;
        std::string id = store(out_dir / f.path, f.media_type);
        if (f.rendition == "thumbnails") {
            frames.push_back({{"time", f.start_seconds}, {"manifest", id}});
            strip_w = f.width;
            strip_h = f.height;
        } else {
            renditions.push_back(image_rendition(f, id, out_dir));
        }
    }
    if (!frames.empty())
        renditions.push_back({{"name", "thumbnails"},
                              {"type", "image/jpeg"},
                              {"width", strip_w},
                              {"height", strip_h},
                              {"frames", frames}});
    return renditions;
}

} // namespace strata::transcoded

// A finished pipeline's files go to blockd and become the renditions metad records on the
// file (PUT /v1/nodes/{id}/processing). HLS playlists are stored with their URIs rewritten to
// the content addresses of what they name (segments, then media playlists), so the master
// playlist's address pins the whole ladder and any of them can be served from
// /v1/content/{id} with relative URIs that resolve. Renditions, in order:
//   {"name":"source", "manifest": SOURCE, "format", "width", "height", "rotation", ...}
//   images: {"name":"display"|"thumbnail", "type", "manifest", "width", "height", "bytes"}
//   videos: {"name":"hls", "type":"application/vnd.apple.mpegurl", "manifest": MASTER,
//            "rungs": [NAME...]}, one {"name": RUNG, "type", "manifest": PLAYLIST, "width",
//            "height", "duration", "segments": [ADDRESS...]} per rung,
//            {"name":"poster", ...image}, {"name":"thumbnails", "type":"image/jpeg",
//            "frames": [{"time", "manifest"}...], "width", "height"}
#pragma once

#include "media.hh"

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace strata::transcoded {

// Stores one file, returns its content address (BlockdFiles::store in the worker).
using StoreFn = std::function<std::string(const std::filesystem::path&, const std::string&)>;

// Throws MediaError (transient) when a playlist names a file the pipeline did not write.
nlohmann::json publish(const MediaInfo& source, const std::string& source_id,
                       const std::vector<OutputFile>& files, const std::filesystem::path& out_dir,
                       const StoreFn& store);

nlohmann::json to_json(const MediaInfo& info);

// A playlist's text with every URI line replaced through `address` (which gets the URI as
// written and returns its content address, or "" when it is unknown: then MediaError).
std::string rewrite_playlist(const std::string& text,
                             const std::function<std::string(const std::string&)>& address);

} // namespace strata::transcoded

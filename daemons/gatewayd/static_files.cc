#include "static_files.hh"

#include <fstream>
#include <map>
#include <sstream>

namespace strata::gatewayd {

namespace fs = std::filesystem;

namespace {
// The web client is a handful of small files; anything larger is not ours to serve here.
constexpr std::uintmax_t kMaxFileBytes = 16u << 20;

http::Response not_found(const std::string& relative) {
    return http::Response::error(404, "not_found", "no file /" + relative);
}
} // namespace

std::string content_type_for(const fs::path& file) {
    static const std::map<std::string, std::string> types = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    auto it = types.find(file.extension().string());
    return it == types.end() ? "application/octet-stream" : it->second;
}

http::Response serve_static(const fs::path& root, const std::string& relative) {
    for (const auto& part : fs::path(relative))
        if (part == ".." || (!part.empty() && part.string().front() == '.'))
            return not_found(relative);
    std::error_code ec;
    fs::path base = fs::canonical(root, ec);
    if (ec) return http::Response::error(503, "no_web_root", "web root is not available");
    fs::path file = fs::weakly_canonical(base / relative, ec);
    if (ec) return not_found(relative);
    if (fs::is_directory(file, ec)) file /= "index.html";
    file = fs::canonical(file, ec);
    if (ec || !fs::is_regular_file(file, ec)) return not_found(relative);
    // The resolved file (symlinks followed) must still be inside the root.
    auto rel = file.lexically_relative(base);
    if (rel.empty() || *rel.begin() == "..") return not_found(relative);
    if (fs::file_size(file, ec) > kMaxFileBytes || ec) return not_found(relative);
    std::ifstream in(file, std::ios::binary);
    if (!in) return not_found(relative);
    std::ostringstream body;
    body << in.rdbuf();
    auto response = http::Response::text(200, body.str(), content_type_for(file));
    response.headers.emplace("X-Content-Type-Options", "nosniff");
    response.headers.emplace("Cache-Control", "no-cache");
    return response;
}

} // namespace strata::gatewayd

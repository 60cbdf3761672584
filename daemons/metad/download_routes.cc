// Downloads: metad checks who may read the file, then has blockd sign a short-lived URL
// of the content (POST /v1/sign) and redirects there. The bytes never pass through metad,
// and the signed URL is served by blockd (its socket through the gateway's /c/ route, or
// its own public listener, or a CDN in front of either).
//
//   GET /v1/nodes/{id}/content[?rendition=NAME][&redirect=false]    files:read
//   GET /v1/links/{token}/content, GET /v1/links/{token}/nodes/{id}/content   a link's holder
//
// 302 Found with Location: files.content_url_base + "/c/MANIFEST?exp=...&sig=..." and the
// JSON {"url", "expires"}; with ?redirect=false, 200 and the same JSON (for clients that
// put the URL in a <video> or hand it on).
#include "file_routes.hh"

#include <string>

namespace strata::metad {

using namespace route_util;

namespace {

// The manifest to serve: the file's own content, or one of its renditions.
std::string manifest_of(const Node& n, const http::Request& req) {
    if (n.kind != NodeKind::file)
        throw http::Error(400, "not_a_file", "folders have no content to download");
    if (n.trashed) throw http::Error(404, "not_found", "no such file or folder");
    auto it = req.query.find("rendition");
    if (it == req.query.end()) {
        if (n.state == FileState::uploading || n.manifest.empty())
            throw http::Error(409, "not_ready", "the file's upload has not finished");
        return n.manifest;
    }
    for (const auto& r : n.renditions)
        if (r.is_object() && r.value("name", std::string()) == it->second &&
            r.value("manifest", std::string()).size() == 64)
            return r["manifest"].get<std::string>();
    throw http::Error(404, "no_such_rendition", "the file has no rendition " + it->second);
}

http::Response signed_redirect(const FileOptions& fo, const std::string& manifest,
                               const http::Request& req) {
    if (!fo.blockd)
        throw http::Error(503, "blockd_not_configured",
                          "downloads need blockd.socket (see metad.conf(5))");
    http_client::Request sign;
    sign.method = "POST";
    sign.path = "/v1/sign";
    sign.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    sign.body = json{{"id", manifest}, {"ttl", fo.content_url_ttl.count()}}.dump();
    http_client::Response r;
    try {
        r = fo.blockd->request(std::move(sign));
    } catch (const std::exception& e) {
        throw http::Error(502, "blockd_unavailable", std::string("blockd: ") + e.what());
    }
    if (r.status == 503)
        throw http::Error(503, "downloads_not_configured",
                          "blockd signs no URLs (signing.key_file, see blockd.conf(5))");
    json answer;
    try {
        if (r.status != 200) throw std::runtime_error("status " + std::to_string(r.status));
        answer = r.json();
        if (!answer.at("url").is_string() || !answer.at("expires").is_number_integer())
            throw std::runtime_error("no url");
    } catch (const std::exception& e) {
        throw http::Error(502, "blockd_error",
                          std::string("blockd did not sign the content URL (") + e.what() + ")");
    }
    std::string url = fo.content_url_base + answer["url"].get<std::string>();
    json body = {{"url", url}, {"expires", answer["expires"]}};
    auto it = req.query.find("redirect");
    bool redirect = it == req.query.end() || (it->second != "false" && it->second != "0");
    auto resp = http::Response::json(redirect ? 302 : 200, body);
    if (redirect) resp.headers.emplace("Location", url);
    // The URL opens the content to whoever holds it: no shared cache may keep it.
    resp.headers.emplace("Cache-Control", "private, no-store");
    return resp;
}

} // namespace

void add_download_routes(http::Router& router, const std::shared_ptr<Context>& ctx,
                         std::shared_ptr<const FileOptions> fo) {
    // Blocking: blockd is asked with the thread-safe blocking client.
    router.add_blocking("GET", "/v1/nodes/{id}/content", [ctx, fo](http::Request& req) {
        std::uint64_t caller = ctx->caller(req, "files:read");
        Node n = guarded_store([&] { return ctx->store.stat(Principal{caller}, path_id(req)); });
        return signed_redirect(*fo, manifest_of(n, req), req);
    });
    router.add_blocking("GET", "/v1/links/{token}/content", [ctx, fo](http::Request& req) {
        Principal who = link_principal(*ctx, req);
        Node n = guarded_store([&] { return ctx->store.stat(who, who.link_root); });
        return signed_redirect(*fo, manifest_of(n, req), req);
    });
    router.add_blocking(
        "GET", "/v1/links/{token}/nodes/{id}/content", [ctx, fo](http::Request& req) {
            Principal who = link_principal(*ctx, req);
            Node n = guarded_store([&] { return ctx->store.stat(who, path_id(req)); });
            return signed_redirect(*fo, manifest_of(n, req), req);
        });
}

} // namespace strata::metad

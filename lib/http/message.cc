#include "http/message.hh"

#include <algorithm>
#include <strings.h>
#include <unistd.h>

namespace strata::http {

std::optional<std::string_view> Request::header(std::string_view name) const {
    auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return std::string_view(it->second);
}

nlohmann::json Request::json() const {
    if (auto ct = header("Content-Type"); ct && ct->find("json") == std::string_view::npos)
        throw Error(415, "unsupported_media_type", "expected Content-Type: application/json");
    try {
        return nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception& e) { // parse_error, and out_of_range for 1e999
        throw Error(400, "bad_json", std::string("request body is not valid JSON: ") + e.what());
    }
}

OpenFile::~OpenFile() {
    if (fd_ >= 0) ::close(fd_);
}

std::uint64_t Response::body_size() const {
    if (has_pieces) {
        std::uint64_t n = 0;
        for (const auto& p : pieces)
            n += p.size();
        return n;
    }
    if (file) return file->length;
    if (reader) return reader->size();
    return body.size();
}

Response Response::json(int status, const nlohmann::json& value) {
    Response r;
    r.status = status;
    r.headers.emplace("Content-Type", "application/json");
    // Invalid UTF-8 in a value must not throw out of a handler: replace it.
    r.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return r;
}

Response Response::text(int status, std::string body, std::string content_type) {
    Response r;
    r.status = status;
    r.headers.emplace("Content-Type", std::move(content_type));
    r.body = std::move(body);
    return r;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
    return json(status, {{"error", {{"code", code}, {"message", message}}}});
}

} // namespace strata::http

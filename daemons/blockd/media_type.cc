#include "media_type.hh"

#include <algorithm>
#include <cctype>
#include <magic.h>

namespace strata::blockd {

namespace {

struct MagicCookie {
    magic_t cookie = nullptr;
    MagicCookie() {
        cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
        if (cookie && magic_load(cookie, nullptr) != 0) {
            magic_close(cookie);
            cookie = nullptr;
        }
    }
    ~MagicCookie() {
        if (cookie) magic_close(cookie);
    }
    MagicCookie(const MagicCookie&) = delete;
    MagicCookie& operator=(const MagicCookie&) = delete;
};

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && s.size() <= 127 && std::all_of(s.begin(), s.end(), is_token_char);
}

} // namespace

std::string detect_media_type(std::string_view head) {
    // magic_t is not thread-safe: one cookie per thread, loaded on first use.
    thread_local MagicCookie magic;
    if (!magic.cookie) return "application/octet-stream";
    const char* t = magic_buffer(magic.cookie, head.data(), head.size());
    if (!t) return "application/octet-stream";
    auto type = normalize_media_type(t);
    return type ? *type : "application/octet-stream";
}

std::optional<std::string> normalize_media_type(std::string_view declared) {
    auto slash = declared.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    if (!is_token(declared.substr(0, slash)) || !is_token(declared.substr(slash + 1)))
        return std::nullopt;
    std::string out(declared);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool is_active_media_type(std::string_view type) {
    return type == "text/html" || type == "application/xhtml+xml" || type == "image/svg+xml" ||
           type == "text/xml" || type == "application/xml" || type.ends_with("+xml") ||
           type == "text/javascript" || type == "application/javascript" ||
           type == "application/x-javascript" || type == "text/xsl";
}

} // namespace strata::blockd

#include "http/head_check.hh"

#include "http/chars.hh"
#include "http/ows.hh"
#include "http/target.hh"

#include <algorithm>
#include <cctype>
#include <strings.h>

namespace strata::http {

namespace {

bool dot_segment(std::string_view path) {
    std::size_t i = 0;
    while (i <= path.size()) {
        std::size_t slash = path.find('/', i);
        std::string_view seg = path.substr(i, slash == path.npos ? path.npos : slash - i);
        if (seg == "." || seg == "..") return true;
        if (slash == path.npos) break;
        i = slash + 1;
    }
    return false;
}

Response refuse(int status, std::string_view code, std::string message) {
    Response r = Response::error(status, std::string(code), std::move(message));
    r.headers.emplace("Connection", "close");
    return r;
}

std::optional<Response> check_target(const Request& req) {
    std::string_view t = req.target;
    if (t.empty()) return std::nullopt; // tests that build requests without a target
    if (!std::all_of(t.begin(), t.end(), [](char ch) {
            auto c = static_cast<unsigned char>(ch);
            return c > 0x20 && c < 0x7f;
        }))
        return refuse(400, "bad_request",
                      "the request-target has spaces, control characters or non-ASCII bytes");
    if (t == "*") {
        if (req.method == "OPTIONS") return std::nullopt;
        return refuse(400, "bad_request", "the request-target * is only for OPTIONS");
    }
    // Only the path is checked past its bytes: the query is the application's (a proxy
    // forwards it as sent, and a handler may want to refuse "%0d%0a" in it itself).
    auto parsed = parse_target(t.substr(0, t.find_first_of("?#")));
    if (!parsed)
        return refuse(400, "bad_request",
                      "the request path is not valid (a bad %-escape, or a control character)");
    if (dot_segment(parsed->path))
        return refuse(400, "bad_request", "the request path has a '.' or '..' segment");
    return std::nullopt;
}

} // namespace

std::optional<Response> check_head(const Request& req) {
    if (!is_token(req.method)) return refuse(400, "bad_request", "the method is not a token");
    if (auto bad = check_target(req)) return bad;
    std::size_t hosts = 0, tes = 0;
    std::optional<std::string_view> length, coding;
    for (const auto& [name, value] : req.headers) {
        if (!is_token(name))
            return refuse(400, "bad_request", "a header name is not a token (RFC 9110 5.1)");
        if (!field_value_chars(value))
            return refuse(400, "bad_request", "header " + name + " has a control character");
        if (strcasecmp(name.c_str(), "host") == 0) {
            ++hosts;
        } else if (strcasecmp(name.c_str(), "content-length") == 0) {
            std::string_view v = trim_ows(value);
            if (v.empty() || v.find_first_not_of("0123456789") != v.npos)
                return refuse(400, "bad_request", "Content-Length is not a number");
            if (length && *length != v)
                return refuse(400, "bad_request", "two different Content-Length headers");
            length = v;
        } else if (strcasecmp(name.c_str(), "transfer-encoding") == 0) {
            ++tes;
            // Compared as libmicrohttpd compares it (it strips leading whitespace only), so
            // "chunked\t", which it would not read as chunked, is refused, not let through.
            coding = value;
        }
    }
    // libmicrohttpd answers versions other than HTTP/1.x itself; 1.2 and up count as 1.1.
    bool http11 = req.version != "HTTP/1.0";
    if (http11 && hosts != 1)
        return refuse(400, "bad_request",
                      hosts ? "more than one Host header" : "an HTTP/1.1 request needs Host");
    if (hosts > 1) return refuse(400, "bad_request", "more than one Host header");
    if (coding) {
        if (!http11) return refuse(400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request");
        if (length) return refuse(400, "bad_request", "both Content-Length and Transfer-Encoding");
        if (tes > 1) return refuse(400, "bad_request", "more than one Transfer-Encoding header");
        std::string lower(*coding);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower != "chunked") {
            // RFC 9112 6.3: chunked must be the final coding (else the length is unknown),
            // and be applied once; other codings before it are valid HTTP this server does
            // not decode.
            auto comma = lower.rfind(',');
            bool chunked_last = comma != lower.npos &&
                                trim_ows(std::string_view(lower).substr(comma + 1)) == "chunked" &&
                                lower.find("chunked") == lower.rfind("chunked");
            if (chunked_last)
                return refuse(501, "not_implemented",
                              "only the chunked transfer coding is supported");
            return refuse(400, "bad_request",
                          "Transfer-Encoding must be chunked (and chunked only once)");
        }
    }
    return std::nullopt;
}

} // namespace strata::http

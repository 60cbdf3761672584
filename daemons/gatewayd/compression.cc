#include "compression.hh"

#include "header_rules.hh"
#include "http/message.hh"
#include "text.hh"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <zlib.h>
#ifndef STRATA_HAVE_BROTLI
#define STRATA_HAVE_BROTLI 0 // built without meson's define (the fuzz targets): gzip only
#endif
#if STRATA_HAVE_BROTLI
#include <brotli/encode.h>
#endif

namespace strata::gatewayd {

namespace {

using text::lower;
using text::trim;

// "q=0.5" -> 500 (thousandths, as RFC 9110 12.4.2 allows three digits); -1 when malformed.
int qvalue(std::string_view params) {
    int q = 1000;
    std::size_t s = 0;
    while (s < params.size()) {
        auto semi = params.find(';', s);
        std::string_view p = trim(params.substr(s, semi == params.npos ? params.npos : semi - s));
        if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            std::string_view v = p.substr(2);
            if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
            int whole = v[0] - '0', frac = 0, digits = 0;
            if (v.size() > 1) {
                if (v[1] != '.' || v.size() > 5) return -1;
                for (char c : v.substr(2)) {
                    if (c < '0' || c > '9') return -1;
                    frac = frac * 10 + (c - '0');
                    ++digits;
                }
            }
            while (digits++ < 3)
                frac *= 10;
            q = whole * 1000 + frac;
            if (q > 1000) return -1;
        }
        if (semi == params.npos) break;
        s = semi + 1;
    }
    return q;
}

} // namespace

Coding negotiate_coding(std::optional<std::string_view> header) {
    if (!header) return Coding::identity;
    int gz = -1, br = -1, star = -1;
    std::string_view v = *header;
    std::size_t s = 0;
    while (s <= v.size()) {
        auto comma = v.find(',', s);
        std::string_view item = trim(v.substr(s, comma == v.npos ? v.npos : comma - s));
        auto semi = item.find(';');
        std::string coding = lower(trim(item.substr(0, semi)));
        int q = semi == item.npos ? 1000 : qvalue(item.substr(semi + 1));
        if (q >= 0) {
            if (coding == "gzip" || coding == "x-gzip")
                gz = std::max(gz, q);
            else if (coding == "br")
                br = std::max(br, q);
            else if (coding == "*")
                star = q;
        }
        if (comma == v.npos) break;
        s = comma + 1;
    }
    if (gz < 0) gz = star;
    if (br < 0) br = star;
    if (!brotli_available()) br = -1;
    if (br > 0 && br >= gz) return Coding::br;
    if (gz > 0) return Coding::gzip;
    return Coding::identity;
}

bool compressible_type(std::string_view content_type) {
    // Compared without case, in place: this runs for every answer of a compressing route.
    std::string_view t = trim(content_type.substr(0, content_type.find(';')));
    auto starts = [&](std::string_view p) {
        return t.size() >= p.size() && http::equal_nocase(t.substr(0, p.size()), p);
    };
    auto ends = [&](std::string_view s) {
        return t.size() >= s.size() && http::equal_nocase(t.substr(t.size() - s.size()), s);
    };
    if (starts("text/")) return true;
    static constexpr std::string_view exact[] = {
        "application/json",         "application/javascript",   "application/xml",
        "application/x-javascript", "application/wasm",         "image/svg+xml",
        "application/x-ndjson",     "application/manifest+json"};
    for (std::string_view e : exact)
        if (http::equal_nocase(t, e)) return true;
    return ends("+json") || ends("+xml");
}

std::string gzip(std::string_view data, int level) {
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
    return out;
}

bool brotli_available() {
    return STRATA_HAVE_BROTLI != 0;
}

std::optional<std::string> brotli(std::string_view data, int quality) {
#if STRATA_HAVE_BROTLI
    std::string out(BrotliEncoderMaxCompressedSize(data.size()), '\0');
    std::size_t size = out.size();
    if (!BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, data.size(),
                               reinterpret_cast<const std::uint8_t*>(data.data()), &size,
                               reinterpret_cast<std::uint8_t*>(out.data())))
        return std::nullopt;
    out.resize(size);
    return out;
#else
    (void)data;
    (void)quality;
    return std::nullopt;
#endif
}

bool compress_response(http::Response& r, std::string_view method,
                       std::optional<std::string_view> accept_encoding, std::size_t min_bytes,
                       std::size_t max_bytes) {
    if (method == "HEAD" || r.status < 200 || r.status > 203) return false;
    if (r.reader || r.file || r.has_pieces) return false;
    if (r.headers.count("Content-Encoding") || r.headers.count("Content-Range")) return false;
    auto type = r.headers.find("Content-Type");
    if (type == r.headers.end() || !compressible_type(type->second)) return false;
    auto [cb, ce] = r.headers.equal_range("Cache-Control");
    for (auto it = cb; it != ce; ++it)
        if (lower(it->second).find("no-transform") != std::string::npos) return false;
    add_vary(r.headers, "Accept-Encoding");
    if (r.body.size() < min_bytes || r.body.size() > max_bytes) return false;
    Coding c = negotiate_coding(accept_encoding);
    if (c == Coding::identity) return false;
    std::optional<std::string> packed = c == Coding::br ? brotli(r.body) : gzip(r.body);
    if (!packed || packed->size() >= r.body.size()) return false;
    r.body = std::move(*packed);
    r.headers.emplace("Content-Encoding", c == Coding::br ? "br" : "gzip");
    if (auto etag = r.headers.find("ETag");
        etag != r.headers.end() && !etag->second.starts_with("W/"))
        etag->second = "W/" + etag->second;
    return true;
}

} // namespace strata::gatewayd

// Response compression of the gateway (proxy.compress, route option compress=on|off):
// gzip, and brotli when built with libbrotli, chosen by the client's Accept-Encoding
// (q-values honoured; brotli wins a tie, it is smaller at the same speed).
// An answer is compressed when all hold: the request was not HEAD; the status is 200, 201,
// 202 or 203; no Content-Encoding and no Content-Range yet; no Cache-Control: no-transform;
// the body is in memory (not a file or a stream), at least min_bytes and at most max_bytes
// (compressing runs on the loop: a huge answer would stall every other request); the type is
// text/*, JSON, JavaScript, XML, SVG, WebAssembly or another +json/+xml type; and the result
// is smaller. Such answers carry Vary: Accept-Encoding whether compressed or not, and a
// strong ETag becomes weak (the bytes changed, the resource did not).
#pragma once

#include "http/message.hh"

#include <optional>
#include <string>
#include <string_view>

namespace strata::gatewayd {

enum class Coding { identity, gzip, br };

// The coding to answer with for this Accept-Encoding header (identity when none fits).
Coding negotiate_coding(std::optional<std::string_view> accept_encoding);

bool compressible_type(std::string_view content_type);

std::string gzip(std::string_view data, int level = 5);
// Empty optional when brotli is not built in.
std::optional<std::string> brotli(std::string_view data, int quality = 4);
bool brotli_available();

// Compresses the answer in place when the rules above allow it; returns whether it did.
bool compress_response(http::Response& response, std::string_view request_method,
                       std::optional<std::string_view> accept_encoding,
                       std::size_t min_bytes = 1024, std::size_t max_bytes = std::size_t{8} << 20);

} // namespace strata::gatewayd

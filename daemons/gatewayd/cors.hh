// CORS (the Fetch standard's CORS protocol) for a route (route option cors=NAME), from
// [proxy] cors:
//
//   cors = ["web origins=https://app.example.com,https://*.example.com methods=GET,POST,PUT
//            headers=Authorization,Content-Type expose=X-Request-Id credentials=true
//            max_age=600"]
//
// origins= exact origins (scheme://host[:port]), "https://*.example.com" for any subdomain,
// or "*" (any origin; refused with credentials=true, which would hand every site the user's
// cookies). methods= what preflights may ask for (default GET,HEAD,POST), headers= the
// request headers they may ask for (default none beyond the CORS-safelisted ones), expose=
// the response headers scripts may read, max_age= how long browsers keep a preflight
// (seconds, default 600).
// The gateway answers preflights itself (OPTIONS with Origin and Access-Control-Request-
// Method): 204 with the Access-Control-Allow-* headers, or 403 cors_refused when the origin,
// method or a header is not allowed. Other requests go upstream; when their Origin is
// allowed, the answer (the gateway's own errors too, so scripts can read a 401 or 429)
// carries Access-Control-Allow-Origin and friends. The upstream's own Access-Control-*
// headers are dropped on such routes: the gateway alone speaks CORS for them.
#pragma once

#include "http/message.hh"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gatewayd {

struct CorsPolicy {
    std::vector<std::string> origins; // lower case; "*" or "https://*.example.com" patterns
    std::vector<std::string> methods{"GET", "HEAD", "POST"};
    std::vector<std::string> headers; // lower case
    std::vector<std::string> expose;
    bool credentials = false;
    unsigned max_age = 600;

    bool origin_allowed(std::string_view origin) const;
    // A preflight's answer: 204 with the Allow headers, or 403 cors_refused.
    http::Response preflight(std::string_view origin, std::string_view method,
                             std::optional<std::string_view> request_headers) const;
    // Adds the CORS headers of a non-preflight answer (origin allowed) and drops the
    // upstream's own Access-Control-* headers.
    void decorate(http::Headers& response, std::string_view origin) const;
};

using CorsPolicies = std::map<std::string, CorsPolicy>;

// Parses one item; returns its name and policy. Throws std::invalid_argument.
std::pair<std::string, CorsPolicy> parse_cors_policy(std::string_view text);
CorsPolicies parse_cors_policies(const std::vector<std::string>& items);

// A preflight: OPTIONS with Origin and Access-Control-Request-Method.
bool is_preflight(const http::Request& r);

} // namespace strata::gatewayd

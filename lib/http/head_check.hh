// What the general server (server.hh) checks in a request's line and headers once
// libmicrohttpd has parsed them, before any route sees the request or its body is read.
// libmicrohttpd 0.9.75 (Debian 12) is lenient where a gateway must not be: it takes the
// first of two Content-Lengths, lets Transfer-Encoding override Content-Length, reads a body
// of an unknown transfer coding until the client closes, and passes header names with
// spaces, control characters in values and raw spaces or non-ASCII bytes in the target on
// to the handler. Each of those could make the server and a proxy in front of it (or an
// upstream behind it) see different requests in the same bytes (request smuggling).
#pragma once

#include "http/message.hh"

#include <optional>

namespace strata::http {

// nullopt when the head is acceptable, else the answer (400, or 501 for a transfer coding
// other than chunked), in the error shape and with "Connection: close": the body's framing
// cannot be trusted, so nothing after this request on the connection may be read.
//   - the method is a token;
//   - request-target: visible ASCII only, a valid origin form (or absolute form, or "*" for
//     OPTIONS); in its path no bad %-escape or decoded control character (%00, %0d), no
//     "." or ".." segment
//     (a client resolves those before sending; a proxy that forwarded them could reach a
//     path no route allowed);
//   - header names are tokens, values have no control character but HTAB;
//   - HTTP/1.1 has exactly one Host, HTTP/1.0 at most one;
//   - Content-Length: digits only, all copies equal;
//   - Transfer-Encoding: only on HTTP/1.1, once, exactly "chunked", and never together
//     with Content-Length.
std::optional<Response> check_head(const Request& request);

} // namespace strata::http

// HTTP range and conditional request logic of strata-blockd's serving path (RFC 9110
// sections 8.8, 13 and 14), as pure functions with no I/O (except multipart_boundary(),
// which reads the kernel CSPRNG).
//
// Order of evaluation for a GET/HEAD of stored content:
//   1. evaluate() the preconditions (If-Match, If-Unmodified-Since, If-None-Match,
//      If-Modified-Since): 412 / 304 / proceed.
//   2. On proceed and a GET with a Range header: if there is an If-Range header and
//      if_range_allows() is false, ignore Range (200 full). Otherwise parse_range():
//        none / malformed  -> 200 with the whole content (the RFC lets a server ignore Range)
//        unsatisfiable     -> 416 with Content-Range: unsatisfied_range(length)
//        satisfiable, 1    -> 206 with Content-Range: content_range(r, length)
//        satisfiable, > 1  -> 206 multipart/byteranges (multipart_* helpers below)
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::blockd {

// An inclusive byte range, as in Content-Range: bytes first-last/length.
struct ByteRange {
    uint64_t first;
    uint64_t last;
    uint64_t size() const { return last - first + 1; }
    bool operator==(const ByteRange&) const = default;
};

enum class RangeStatus {
    none,          // no Range header, or a unit other than bytes: 200 with the full content
    satisfiable,   // 206; ranges holds at least one range within the content
    unsatisfiable, // 416; no range-spec overlaps the content
    malformed,     // syntax error or too many ranges: ignored, 200 with the full content
};

struct RangeResult {
    RangeStatus status = RangeStatus::none;
    std::vector<ByteRange> ranges; // non-empty only when status == satisfiable
};

// Parses a Range header value against a representation of content_length bytes.
//
// - Unit "bytes" (case-insensitive); any other well-formed unit -> none. An empty or
//   all-whitespace value -> none (same as an absent header).
// - Forms "a-b", "a-" and "-suffix"; OWS (spaces, tabs) around commas and empty list
//   elements are tolerated; "a-b" with b < a, a non-digit, an empty set ("bytes=") or a
//   number of more than 19 digits -> malformed (19 digits always fit in uint64_t).
// - More than max_ranges range-specs (counted as written, before dropping or coalescing)
//   -> malformed: ignoring the header bounds the work a client can ask for.
// - last is clamped to content_length - 1; a suffix longer than the content means the
//   whole content; "-0" and specs with first >= content_length are dropped; if none
//   remain (always the case for an empty content) -> unsatisfiable.
// - Coalescing choice: when more than one range remains, they are sorted by first and
//   overlapping or adjacent ranges are merged, so the parts of a multipart response are
//   disjoint, ascending and never more than the content. RFC 9110 14.3 allows coalescing;
//   sorting non-overlapping ranges departs from the SHOULD of 14.6 (keep request order)
//   on purpose: every part carries its own Content-Range, and ascending parts make the
//   sendfile reads sequential. A single range is returned as is.
RangeResult parse_range(std::string_view header, uint64_t content_length, size_t max_ranges = 16);

// "bytes FIRST-LAST/LENGTH", for a 206 response or a part of a multipart one.
std::string content_range(const ByteRange& range, uint64_t length);
// "bytes */LENGTH", for a 416 response.
std::string unsatisfied_range(uint64_t length);

// ---- HTTP dates (RFC 9110 5.6.7) ----

// Parses an HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or the obsolete
// RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994")
// forms. Names and "GMT" are case-sensitive as the RFC says; the day name must be a valid
// name but is not checked against the date. Leading/trailing OWS is ignored. A two-digit
// RFC 850 year more than 50 years in the future (relative to now) is taken as the most
// recent past year with those digits. Returns nullopt for anything invalid.
std::optional<std::time_t> parse_http_date(std::string_view text);
std::optional<std::time_t> parse_http_date(std::string_view text, std::time_t now);
// IMF-fixdate of t, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::time_t t);

// ---- Entity tags (RFC 9110 8.8.3) ----

struct EntityTag {
    bool weak = false;
    std::string_view opaque; // including the double quotes, e.g. "\"abc\""
};

// Parses a comma-separated list of entity-tags (If-Match / If-None-Match, but not "*"):
// W/ prefixes, OWS around commas, empty elements and commas inside the quotes are
// handled. Returns nullopt if any element is not a valid entity-tag or the list is empty.
// The views point into text.
std::optional<std::vector<EntityTag>> parse_etag_list(std::string_view text);

// ---- Conditional requests (RFC 9110 13.2.2) ----

enum class Precondition {
    proceed,      // go on (maybe with Range)
    not_modified, // 304
    failed,       // 412
};

// Evaluates the preconditions in the order of RFC 9110 13.2.2:
//   1. If-Match: "*" or a strong match with etag, else failed. A malformed list matches
//      nothing (failed), the safe side for a lost-update guard.
//   2. Otherwise If-Unmodified-Since: failed when last_modified is later than the date.
//   3. If-None-Match: "*" or a weak match -> not_modified for GET/HEAD, failed otherwise.
//      A malformed list is ignored.
//   4. Otherwise (no If-None-Match), for GET/HEAD only, If-Modified-Since: not_modified
//      when last_modified is not later than the date.
// Invalid dates are ignored. etag is the representation's strong tag, quoted ("\"abc\"");
// an empty etag means the representation has none (only "*" matches it).
Precondition evaluate(std::optional<std::string_view> if_match,
                      std::optional<std::string_view> if_none_match,
                      std::optional<std::string_view> if_modified_since,
                      std::optional<std::string_view> if_unmodified_since, std::string_view etag,
                      std::time_t last_modified, bool is_get_or_head);

// If-Range (RFC 9110 13.1.5): true when the Range header may be honoured. An entity-tag
// must match etag with the strong comparison (a weak tag never does); a date must be a
// valid HTTP-date equal to last_modified. Anything else -> false (send the full content).
bool if_range_allows(std::string_view if_range, std::string_view etag, std::time_t last_modified);

// ---- multipart/byteranges (RFC 9110 14.6) ----
//
// Body layout, for parts P1..Pn:
//   multipart_part_header(P1) DATA1 multipart_part_header(P2) DATA2 ... multipart_trailer()
// Each part header starts with CRLF "--" boundary, the trailer is CRLF "--" boundary "--"
// CRLF, so the body can be streamed as header strings plus sendfile() of each range.

// 24 lowercase hex characters from getrandom(2). Throws std::system_error on failure.
std::string multipart_boundary();
// "multipart/byteranges; boundary=B", the Content-Type of the 206 response.
std::string multipart_content_type(std::string_view boundary);
// CRLF "--B" CRLF ["Content-Type: T" CRLF] "Content-Range: bytes a-b/len" CRLF CRLF.
// The Content-Type line is omitted when content_type is empty. Throws
// std::invalid_argument if boundary or content_type holds CR, LF or NUL.
std::string multipart_part_header(std::string_view boundary, std::string_view content_type,
                                  const ByteRange& range, uint64_t length);
// CRLF "--B--" CRLF.
std::string multipart_trailer(std::string_view boundary);
// Exact Content-Length of the whole multipart body (headers, data and trailer). Throws
// std::overflow_error if it does not fit in uint64_t.
uint64_t multipart_length(std::string_view boundary, std::string_view content_type,
                          const std::vector<ByteRange>& ranges, uint64_t length);

} // namespace strata::blockd

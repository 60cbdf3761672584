// Unit tests of the range and conditional request logic of strata-blockd (http_range.hh).
#include "http_range.hh"

#include <criterion/criterion.h>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace strata::blockd;

namespace {

void expect_ranges(const RangeResult& r, std::vector<ByteRange> want) {
    cr_assert_eq(int(r.status), int(RangeStatus::satisfiable));
    cr_assert_eq(r.ranges.size(), want.size(), "got %zu ranges, want %zu", r.ranges.size(),
                 want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        cr_expect_eq(r.ranges[i].first, want[i].first, "range %zu first %llu != %llu", i,
                     (unsigned long long)r.ranges[i].first, (unsigned long long)want[i].first);
        cr_expect_eq(r.ranges[i].last, want[i].last, "range %zu last %llu != %llu", i,
                     (unsigned long long)r.ranges[i].last, (unsigned long long)want[i].last);
    }
}

void expect_status(std::string_view header, uint64_t len, RangeStatus want) {
    RangeResult r = parse_range(header, len);
    cr_expect_eq(int(r.status), int(want), "'%.*s' len %llu: status %d, want %d",
                 int(header.size()), header.data(), (unsigned long long)len, int(r.status),
                 int(want));
    if (want != RangeStatus::satisfiable)
        cr_expect(r.ranges.empty(), "'%.*s': ranges must be empty", int(header.size()),
                  header.data());
}

} // namespace

// ---- parse_range ----

Test(range, simple_forms) {
    expect_ranges(parse_range("bytes=0-499", 10000), {{0, 499}});
    expect_ranges(parse_range("bytes=500-999", 10000), {{500, 999}});
    expect_ranges(parse_range("bytes=9500-", 10000), {{9500, 9999}});
    expect_ranges(parse_range("bytes=-500", 10000), {{9500, 9999}});
    expect_ranges(parse_range("bytes=0-0", 1), {{0, 0}});
    expect_ranges(parse_range("bytes=0-", 1), {{0, 0}});
}

Test(range, unit_case_insensitive_and_ows) {
    expect_ranges(parse_range("BYTES=0-1", 10), {{0, 1}});
    expect_ranges(parse_range("Bytes=0-1", 10), {{0, 1}});
    expect_ranges(parse_range("  bytes=0-1\t", 10), {{0, 1}});
    expect_ranges(parse_range("bytes=0-1 ,\t5-6", 10), {{0, 1}, {5, 6}});
    expect_ranges(parse_range("bytes= 0-1 , 5-6 ", 10), {{0, 1}, {5, 6}});
    // Empty list elements are ignored (RFC 9110 5.6.1.2).
    expect_ranges(parse_range("bytes=0-1,,5-6,", 10), {{0, 1}, {5, 6}});
    expect_ranges(parse_range("bytes=,0-1", 10), {{0, 1}});
}

Test(range, absent_or_other_unit_is_none) {
    expect_status("", 10, RangeStatus::none);
    expect_status("   ", 10, RangeStatus::none);
    expect_status("items=0-1", 10, RangeStatus::none);
    expect_status("none=whatever", 10, RangeStatus::none);
    expect_status("bytesx=0-1", 10, RangeStatus::none);
}

Test(range, malformed) {
    for (const char* h :
         {"bytes=",      "bytes=a-b",     "bytes=5-3",   "bytes=--1",     "bytes=-",
          "bytes=1",     "bytes=0-1-2",   "bytes=0x1-2", "bytes=+1-2",    "bytes=1-+2",
          "bytes=-+2",   "bytes=1 -2",    "bytes=1- 2",  "bytes=0-1;5-6", "bytes",
          "bytes 0-1",   "=0-1",          "by tes=0-1",  "bytes=,",       "bytes= , ,",
          "bytes=0-1,a", "bytes=0-1,5-3", "bytes=-1.5",  "bytes=1e3-"})
        expect_status(h, 100, RangeStatus::malformed);
    // A malformed header is ignored even if the content is empty.
    expect_status("bytes=5-3", 0, RangeStatus::malformed);
    expect_status("bytes=", 0, RangeStatus::malformed);
}

Test(range, huge_numbers) {
    // 19 digits: accepted (fits uint64_t), clamped to the content.
    expect_ranges(parse_range("bytes=0-9999999999999999999", 10), {{0, 9}});
    expect_ranges(parse_range("bytes=-9999999999999999999", 10), {{0, 9}});
    expect_status("bytes=9999999999999999999-", 10, RangeStatus::unsatisfiable);
    // 20 digits or more, even if the value would fit (18446744073709551615 = 2^64-1):
    // rejected.
    expect_status("bytes=0-18446744073709551615", 10, RangeStatus::malformed);
    expect_status("bytes=0-18446744073709551616", 10, RangeStatus::malformed);
    expect_status("bytes=0-99999999999999999999999999999999", 10, RangeStatus::malformed);
    expect_status("bytes=-18446744073709551616", 10, RangeStatus::malformed);
    expect_status("bytes=00000000000000000001-2", 10, RangeStatus::malformed);
    // Large content lengths work.
    uint64_t big = UINT64_MAX;
    expect_ranges(parse_range("bytes=-1", big), {{big - 1, big - 1}});
    expect_ranges(parse_range("bytes=9999999999999999999-", big),
                  {{9999999999999999999ull, big - 1}});
}

Test(range, clamping_and_suffix) {
    expect_ranges(parse_range("bytes=5-100", 10), {{5, 9}});
    expect_ranges(parse_range("bytes=-100", 10), {{0, 9}});
    expect_ranges(parse_range("bytes=-10", 10), {{0, 9}});
    expect_ranges(parse_range("bytes=-1", 10), {{9, 9}});
    expect_ranges(parse_range("bytes=9-9", 10), {{9, 9}});
}

Test(range, unsatisfiable) {
    expect_status("bytes=10-", 10, RangeStatus::unsatisfiable);
    expect_status("bytes=10-20", 10, RangeStatus::unsatisfiable);
    expect_status("bytes=-0", 10, RangeStatus::unsatisfiable);
    expect_status("bytes=10-20,-0,30-", 10, RangeStatus::unsatisfiable);
    // Zero-length content: any byte range.
    expect_status("bytes=0-", 0, RangeStatus::unsatisfiable);
    expect_status("bytes=0-0", 0, RangeStatus::unsatisfiable);
    expect_status("bytes=-1", 0, RangeStatus::unsatisfiable);
    expect_status("bytes=-100", 0, RangeStatus::unsatisfiable);
}

Test(range, unsatisfiable_specs_dropped) {
    expect_ranges(parse_range("bytes=20-30,0-1", 10), {{0, 1}});
    expect_ranges(parse_range("bytes=-0,3-4", 10), {{3, 4}});
}

Test(range, coalescing) {
    // Overlapping, adjacent, unsorted, contained, duplicate.
    expect_ranges(parse_range("bytes=0-4,3-8", 100), {{0, 8}});
    expect_ranges(parse_range("bytes=0-4,5-8", 100), {{0, 8}});
    expect_ranges(parse_range("bytes=0-4,6-8", 100), {{0, 4}, {6, 8}});
    expect_ranges(parse_range("bytes=50-60,0-1,10-20", 100), {{0, 1}, {10, 20}, {50, 60}});
    expect_ranges(parse_range("bytes=0-99,10-20", 100), {{0, 99}});
    expect_ranges(parse_range("bytes=1-1,1-1,1-1", 100), {{1, 1}});
    expect_ranges(parse_range("bytes=-10,0-89", 100), {{0, 99}});
    expect_ranges(parse_range("bytes=90-,-5", 100), {{90, 99}});
    expect_ranges(parse_range("bytes=0-0,-1", 1), {{0, 0}});
    // A single range is kept as is.
    expect_ranges(parse_range("bytes=3-7", 100), {{3, 7}});
}

Test(range, max_ranges) {
    std::string h = "bytes=0-0";
    for (int i = 1; i < 16; ++i)
        h += "," + std::to_string(2 * i) + "-" + std::to_string(2 * i);
    RangeResult r = parse_range(h, 1000);
    cr_assert_eq(int(r.status), int(RangeStatus::satisfiable));
    cr_expect_eq(r.ranges.size(), 16u);
    h += ",100-100"; // 17
    expect_status(h, 1000, RangeStatus::malformed);
    cr_expect_eq(int(parse_range(h, 1000, 17).status), int(RangeStatus::satisfiable));
    // 1000 ranges: ignored, whatever they are (even unsatisfiable or on empty content).
    std::string many = "bytes=";
    for (int i = 0; i < 1000; ++i)
        many += (i ? "," : "") + std::to_string(i) + "-" + std::to_string(i);
    expect_status(many, 5000, RangeStatus::malformed);
    expect_status(many, 0, RangeStatus::malformed);
    // Empty elements are not counted.
    std::string commas = "bytes=" + std::string(1000, ',') + "0-1" + std::string(1000, ',');
    expect_ranges(parse_range(commas, 10), {{0, 1}});
    cr_expect_eq(int(parse_range("bytes=0-1", 10, 0).status), int(RangeStatus::malformed));
}

Test(range, content_range_strings) {
    cr_expect_eq(content_range({0, 499}, 1234), "bytes 0-499/1234");
    cr_expect_eq(content_range({0, UINT64_MAX - 1}, UINT64_MAX),
                 "bytes 0-18446744073709551614/18446744073709551615");
    cr_expect_eq(unsatisfied_range(1234), "bytes */1234");
    cr_expect_eq(unsatisfied_range(0), "bytes */0");
}

// ---- HTTP dates ----

static constexpr std::time_t kRfcExample = 784111777; // Sun, 06 Nov 1994 08:49:37 GMT
static constexpr std::time_t kNow2026 = 1795000000;   // 2026-11-18

Test(date, three_formats) {
    cr_expect_eq(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), kRfcExample);
    cr_expect_eq(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", kNow2026), kRfcExample);
    cr_expect_eq(parse_http_date("Sun Nov  6 08:49:37 1994"), kRfcExample);
    cr_expect_eq(parse_http_date("Sun Nov 06 08:49:37 1994"), kRfcExample);
    cr_expect_eq(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT\t"), kRfcExample);
    cr_expect_eq(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    cr_expect_eq(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"), 253402300799);
    cr_expect_eq(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), 951825600);
    // Leap second: accepted, the same instant as the next second.
    cr_expect_eq(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228800);
}

Test(date, rfc850_two_digit_years) {
    // Relative to 2026: up to 50 years ahead stays in this century, else the past one.
    cr_expect_eq(parse_http_date("Tuesday, 01-Jan-70 00:00:00 GMT", kNow2026),
                 parse_http_date("Tue, 01 Jan 2070 00:00:00 GMT"));
    cr_expect_eq(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT", 0), 0);
    cr_expect_eq(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 0), kRfcExample);
    cr_expect_eq(parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT", kNow2026), 946684800);
    cr_expect_eq(parse_http_date("Wednesday, 01-Jan-76 00:00:00 GMT", kNow2026),
                 parse_http_date("Wed, 01 Jan 2076 00:00:00 GMT"));
    cr_expect_eq(parse_http_date("Friday, 01-Jan-77 00:00:00 GMT", kNow2026),
                 parse_http_date("Sat, 01 Jan 1977 00:00:00 GMT"));
}

Test(date, invalid) {
    for (const char* s : {"",
                          "garbage",
                          "Sun, 06 Nov 1994 08:49:37 UTC",
                          "Sun, 06 Nov 1994 08:49:37 gmt",
                          "sun, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 06 nov 1994 08:49:37 GMT",
                          "Sun, 6 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 94 08:49:37 GMT",
                          "Sun, 06 Nov 1994 8:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37",
                          "Sun, 06 Nov 1994 08:49:37 GMT x",
                          "Sun,06 Nov 1994 08:49:37 GMT",
                          "Sun, 32 Jan 1994 08:49:37 GMT",
                          "Sun, 00 Jan 1994 08:49:37 GMT",
                          "Sun, 29 Feb 1900 08:49:37 GMT",
                          "Sun, 30 Feb 2000 08:49:37 GMT",
                          "Sun, 31 Apr 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 06 Nov 1994 08:60:00 GMT",
                          "Sun, 06 Nov 1994 08:49:61 GMT",
                          "Xyz, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Xyz 1994 08:49:37 GMT",
                          "Sunday, 06-Nov-1994 08:49:37 GMT",
                          "Sun, 06-Nov-94 08:49:37 GMT",
                          "Sunday, 06 Nov 1994 08:49:37 GMT",
                          "Sun Nov 6 08:49:37 1994",
                          "Sun Nov  6 08:49:37 94",
                          "Sun Nov  6 08:49:37 1994 GMT",
                          "Sun, 06 Nov 1994 08:49:37 GMT\r\n",
                          "Sun, 06 Nov -994 08:49:37 GMT",
                          "1994-11-06T08:49:37Z",
                          "784111777"})
        cr_expect(!parse_http_date(s).has_value(), "'%s' must be invalid", s);
}

Test(date, format_and_round_trip) {
    cr_expect_eq(format_http_date(kRfcExample), "Sun, 06 Nov 1994 08:49:37 GMT");
    cr_expect_eq(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    cr_expect_eq(format_http_date(951825600), "Tue, 29 Feb 2000 12:00:00 GMT");
    cr_expect_eq(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    cr_expect_eq(format_http_date(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
    for (std::time_t t = -86400LL * 800; t < 253402300799; t += 86400LL * 37 + 3607)
        cr_assert_eq(parse_http_date(format_http_date(t)), t, "round trip of %lld", (long long)t);
}

// ---- Entity tags ----

Test(etag, list_parsing) {
    auto l = parse_etag_list("\"a\", W/\"b\",\t\"c,d\" ,,\"\"");
    cr_assert(l.has_value());
    cr_assert_eq(l->size(), 4u);
    cr_expect_eq((*l)[0].opaque, "\"a\"");
    cr_expect(!(*l)[0].weak);
    cr_expect_eq((*l)[1].opaque, "\"b\"");
    cr_expect((*l)[1].weak);
    cr_expect_eq((*l)[2].opaque, "\"c,d\"");
    cr_expect_eq((*l)[3].opaque, "\"\"");
    for (const char* bad : {"", " , ", "a", "\"a", "\"a\" \"b\"", "w/\"a\"", "W/ \"a\"", "W/a",
                            "\"a b\"", "\"a\"x", "*", "\"a\", *", "\"a\"\"b\""})
        cr_expect(!parse_etag_list(bad).has_value(), "'%s' must be invalid", bad);
}

// ---- Preconditions ----

static constexpr const char* kTag = "\"abc\"";
static constexpr std::time_t kMtime = kRfcExample;
static constexpr const char* kDateEq = "Sun, 06 Nov 1994 08:49:37 GMT";
static constexpr const char* kDateBefore = "Sun, 06 Nov 1994 08:49:36 GMT";
static constexpr const char* kDateAfter = "Sun, 06 Nov 1994 08:49:38 GMT";

using O = std::optional<std::string_view>;

static Precondition ev(O im, O inm, O ims, O ius, bool get = true) {
    return evaluate(im, inm, ims, ius, kTag, kMtime, get);
}

Test(precondition, none_proceeds) {
    cr_expect_eq(ev({}, {}, {}, {}), Precondition::proceed);
    cr_expect_eq(ev({}, {}, {}, {}, false), Precondition::proceed);
}

Test(precondition, if_match) {
    cr_expect_eq(ev("\"abc\"", {}, {}, {}), Precondition::proceed);
    cr_expect_eq(ev("\"x\", \"abc\"", {}, {}, {}), Precondition::proceed);
    cr_expect_eq(ev("*", {}, {}, {}), Precondition::proceed);
    cr_expect_eq(ev(" * ", {}, {}, {}), Precondition::proceed);
    cr_expect_eq(ev("\"x\"", {}, {}, {}), Precondition::failed);
    cr_expect_eq(ev("W/\"abc\"", {}, {}, {}), Precondition::failed); // strong comparison
    cr_expect_eq(ev("garbage", {}, {}, {}), Precondition::failed);
    cr_expect_eq(ev("", {}, {}, {}), Precondition::failed);
    cr_expect_eq(ev("\"x\"", {}, {}, {}, false), Precondition::failed);
    // A weak representation tag never matches If-Match.
    cr_expect_eq(evaluate("W/\"abc\"", {}, {}, {}, "W/\"abc\"", kMtime, true),
                 Precondition::failed);
}

Test(precondition, if_unmodified_since) {
    cr_expect_eq(ev({}, {}, {}, kDateEq), Precondition::proceed);
    cr_expect_eq(ev({}, {}, {}, kDateAfter), Precondition::proceed);
    cr_expect_eq(ev({}, {}, {}, kDateBefore), Precondition::failed);
    cr_expect_eq(ev({}, {}, {}, kDateBefore, false), Precondition::failed);
    cr_expect_eq(ev({}, {}, {}, "not a date"), Precondition::proceed); // ignored
    // Ignored when If-Match is present (step 2 only without If-Match).
    cr_expect_eq(ev("\"abc\"", {}, {}, kDateBefore), Precondition::proceed);
}

Test(precondition, if_none_match) {
    cr_expect_eq(ev({}, "\"abc\"", {}, {}), Precondition::not_modified);
    cr_expect_eq(ev({}, "W/\"abc\"", {}, {}), Precondition::not_modified); // weak comparison
    cr_expect_eq(ev({}, "\"x\", W/\"abc\"", {}, {}), Precondition::not_modified);
    cr_expect_eq(ev({}, "*", {}, {}), Precondition::not_modified);
    cr_expect_eq(ev({}, "\"x\"", {}, {}), Precondition::proceed);
    cr_expect_eq(ev({}, "\"abc\"", {}, {}, false), Precondition::failed);
    cr_expect_eq(ev({}, "*", {}, {}, false), Precondition::failed);
    cr_expect_eq(ev({}, "\"x\"", {}, {}, false), Precondition::proceed);
    cr_expect_eq(ev({}, "garbage", {}, {}), Precondition::proceed); // malformed: ignored
    cr_expect_eq(ev({}, "\"ab,c\", \"abc\"", {}, {}), Precondition::not_modified);
    cr_expect_eq(ev({}, "\"abc,\"", {}, {}), Precondition::proceed);
}

Test(precondition, if_modified_since) {
    cr_expect_eq(ev({}, {}, kDateEq, {}), Precondition::not_modified);
    cr_expect_eq(ev({}, {}, kDateAfter, {}), Precondition::not_modified);
    cr_expect_eq(ev({}, {}, kDateBefore, {}), Precondition::proceed);
    cr_expect_eq(ev({}, {}, "Sunday, 06-Nov-94 08:49:37 GMT", {}), Precondition::not_modified);
    cr_expect_eq(ev({}, {}, "Sun Nov  6 08:49:37 1994", {}), Precondition::not_modified);
    cr_expect_eq(ev({}, {}, "invalid", {}), Precondition::proceed);
    // Only for GET/HEAD.
    cr_expect_eq(ev({}, {}, kDateEq, {}, false), Precondition::proceed);
}

Test(precondition, order) {
    // If-Match fails before If-None-Match could give 304.
    cr_expect_eq(ev("\"x\"", "\"abc\"", {}, {}), Precondition::failed);
    // If-Unmodified-Since fails before If-None-Match / If-Modified-Since.
    cr_expect_eq(ev({}, "\"abc\"", kDateEq, kDateBefore), Precondition::failed);
    // If-None-Match present: If-Modified-Since ignored, either way.
    cr_expect_eq(ev({}, "\"x\"", kDateEq, {}), Precondition::proceed);
    cr_expect_eq(ev({}, "\"abc\"", kDateBefore, {}), Precondition::not_modified);
    // Even a malformed If-None-Match disables If-Modified-Since (the field is present).
    cr_expect_eq(ev({}, "garbage", kDateEq, {}), Precondition::proceed);
    // All pass: If-Match ok, If-None-Match mismatch -> proceed.
    cr_expect_eq(ev("\"abc\"", "\"x\"", kDateEq, kDateBefore), Precondition::proceed);
    // If-Match ok, then If-None-Match match -> 304.
    cr_expect_eq(ev("*", "*", {}, {}), Precondition::not_modified);
}

// ---- If-Range ----

Test(if_range, etag_and_date) {
    cr_expect(if_range_allows("\"abc\"", kTag, kMtime));
    cr_expect(if_range_allows(" \"abc\" ", kTag, kMtime));
    cr_expect(!if_range_allows("\"x\"", kTag, kMtime));
    cr_expect(!if_range_allows("W/\"abc\"", kTag, kMtime)); // weak: never for If-Range
    cr_expect(!if_range_allows("\"abc\"", "W/\"abc\"", kMtime));
    cr_expect(!if_range_allows("\"abc\", \"x\"", kTag, kMtime)); // one tag, not a list
    cr_expect(if_range_allows(kDateEq, kTag, kMtime));
    cr_expect(if_range_allows("Sun Nov  6 08:49:37 1994", kTag, kMtime));
    cr_expect(!if_range_allows(kDateAfter, kTag, kMtime)); // exact match only
    cr_expect(!if_range_allows(kDateBefore, kTag, kMtime));
    cr_expect(!if_range_allows("", kTag, kMtime));
    cr_expect(!if_range_allows("*", kTag, kMtime));
    cr_expect(!if_range_allows("garbage", kTag, kMtime));
}

// ---- multipart ----

Test(multipart, boundary) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        std::string b = multipart_boundary();
        cr_assert_eq(b.size(), 24u);
        cr_assert(b.find_first_not_of("0123456789abcdef") == std::string::npos);
        seen.insert(b);
    }
    cr_expect_eq(seen.size(), 100u);
    cr_expect_eq(multipart_content_type("xyz"), "multipart/byteranges; boundary=xyz");
}

Test(multipart, layout_and_length) {
    const std::string content = "0123456789abcdefghij"; // 20 bytes
    RangeResult r = parse_range("bytes=0-2,-3,10-11", content.size());
    cr_assert_eq(r.ranges.size(), 3u);
    std::string body;
    for (const ByteRange& br : r.ranges) {
        body += multipart_part_header("B", "text/plain", br, content.size());
        body += content.substr(br.first, br.size());
    }
    body += multipart_trailer("B");
    cr_expect_eq(body, "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/20\r\n"
                       "\r\n012"
                       "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-11/20\r\n"
                       "\r\nab"
                       "\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 17-19/20\r\n"
                       "\r\nhij"
                       "\r\n--B--\r\n");
    cr_expect_eq(multipart_length("B", "text/plain", r.ranges, content.size()), body.size());
    // No Content-Type line when the type is unknown.
    cr_expect_eq(multipart_part_header("B", "", {0, 0}, 1),
                 "\r\n--B\r\nContent-Range: bytes 0-0/1\r\n\r\n");
    std::string b = multipart_boundary();
    uint64_t want = multipart_trailer(b).size();
    for (const ByteRange& br : r.ranges)
        want += multipart_part_header(b, "video/mp4", br, 20).size() + br.size();
    cr_expect_eq(multipart_length(b, "video/mp4", r.ranges, 20), want);
    cr_expect_eq(multipart_length(b, "video/mp4", {}, 20), multipart_trailer(b).size());
}

Test(multipart, errors) {
    cr_expect_throw(multipart_part_header("B", "text/plain\r\nX-Evil: 1", {0, 0}, 1),
                    std::invalid_argument);
    cr_expect_throw(multipart_trailer("B\n"), std::invalid_argument);
    std::vector<ByteRange> huge = {{0, UINT64_MAX - 2}, {UINT64_MAX - 1, UINT64_MAX - 1}};
    cr_expect_throw(multipart_length("B", "", huge, UINT64_MAX), std::overflow_error);
}

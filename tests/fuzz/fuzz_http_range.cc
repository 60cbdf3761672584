// libFuzzer target: strata-blockd's Range parser (and the date / entity-tag parsers of the
// same serving path) on arbitrary bytes. Checks, for several content lengths including 0:
// no crash, every returned range lies within the content with first <= last, multiple
// ranges are sorted and disjoint (coalesced), at most max_ranges are returned, a status
// other than satisfiable carries no range, and the multipart length matches its parts.
#include "http_range.hh"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace strata::blockd;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void check_range(std::string_view header, uint64_t length, size_t max_ranges) {
    RangeResult r = parse_range(header, length, max_ranges);
    if (r.status != RangeStatus::satisfiable) {
        check(r.ranges.empty());
        if (r.status == RangeStatus::unsatisfiable) (void)unsatisfied_range(length);
        return;
    }
    check(length > 0);
    check(!r.ranges.empty() && r.ranges.size() <= max_ranges);
    uint64_t total = 0;
    for (size_t i = 0; i < r.ranges.size(); ++i) {
        const ByteRange& br = r.ranges[i];
        check(br.first <= br.last && br.last < length);
        if (i > 0) check(r.ranges[i - 1].last + 1 < br.first); // sorted, not even adjacent
        total += br.size();                                    // disjoint: total <= length
        check(total <= length);
        (void)content_range(br, length);
    }
    if (length <= (uint64_t(1) << 40)) {
        uint64_t want = multipart_trailer("b").size() + total;
        for (const ByteRange& br : r.ranges)
            want += multipart_part_header("b", "x/y", br, length).size();
        check(multipart_length("b", "x/y", r.ranges, length) == want);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    static constexpr uint64_t kLengths[] = {
        0, 1, 2, 10, 4096, 4194304, 9999999999999999999ull, UINT64_MAX};
    for (uint64_t len : kLengths)
        check_range(text, len, 16);
    check_range(text, 100, 1);

    // Dates: whatever parses formats back to an IMF-fixdate that parses to the same time.
    if (auto t = parse_http_date(text, 1795000000))
        check(parse_http_date(format_http_date(*t)) == t);
    // Entity tags: every parsed tag is quoted and lies inside the input.
    if (auto list = parse_etag_list(text)) {
        check(!list->empty());
        for (const EntityTag& tag : *list) {
            check(tag.opaque.size() >= 2 && tag.opaque.front() == '"' && tag.opaque.back() == '"');
            check(tag.opaque.data() >= text.data() &&
                  tag.opaque.data() + tag.opaque.size() <= text.data() + text.size());
        }
    }
    (void)if_range_allows(text, "\"abc\"", 784111777);
    (void)evaluate(text, text, text, text, "\"abc\"", 784111777, true);
    (void)evaluate(text, std::nullopt, std::nullopt, text, "\"abc\"", 784111777, false);
    return 0;
}

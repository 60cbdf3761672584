// HTTP range and conditional request logic (RFC 9110); see http_range.hh.
#include "http_range.hh"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <sys/random.h>
#include <system_error>

namespace strata::blockd {

namespace {

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

// tchar of RFC 9110 5.6.2.
bool is_tchar(char c) {
    if (is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// 1*19DIGIT; 19 digits are at most 9999999999999999999 < 2^64, and the multiplication is
// checked anyway so a later change of the limit cannot overflow silently.
std::optional<uint64_t> parse_u64(std::string_view s) {
    if (s.empty() || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (!is_digit(c)) return std::nullopt;
        uint64_t d = uint64_t(c - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

struct Spec {
    bool suffix;
    uint64_t a; // first-pos, or suffix-length
    std::optional<uint64_t> b;
};

std::optional<Spec> parse_spec(std::string_view s) {
    size_t dash = s.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::string_view left = s.substr(0, dash), right = s.substr(dash + 1);
    if (left.empty()) {
        auto n = parse_u64(right); // rejects "", "-1" (from "--1"), non-digits
        if (!n) return std::nullopt;
        return Spec{true, *n, std::nullopt};
    }
    auto a = parse_u64(left);
    if (!a) return std::nullopt;
    if (right.empty()) return Spec{false, *a, std::nullopt};
    auto b = parse_u64(right);
    if (!b || *b < *a) return std::nullopt;
    return Spec{false, *a, b};
}

} // namespace

RangeResult parse_range(std::string_view header, uint64_t content_length, size_t max_ranges) {
    header = trim_ows(header);
    if (header.empty()) return {RangeStatus::none, {}};
    size_t eq = header.find('=');
    if (eq == std::string_view::npos) return {RangeStatus::malformed, {}};
    std::string_view unit = header.substr(0, eq);
    if (unit.empty() || !std::all_of(unit.begin(), unit.end(), is_tchar))
        return {RangeStatus::malformed, {}};
    if (!iequals(unit, "bytes")) return {RangeStatus::none, {}};

    std::vector<Spec> specs;
    std::string_view rest = header.substr(eq + 1);
    while (true) {
        size_t comma = rest.find(',');
        std::string_view elem = trim_ows(rest.substr(0, comma));
        if (!elem.empty()) { // empty list elements are ignored (RFC 9110 5.6.1.2)
            if (specs.size() >= max_ranges) return {RangeStatus::malformed, {}};
            auto spec = parse_spec(elem);
            if (!spec) return {RangeStatus::malformed, {}};
            specs.push_back(*spec);
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (specs.empty()) return {RangeStatus::malformed, {}};

    RangeResult result{RangeStatus::unsatisfiable, {}};
    if (content_length == 0) return result;
    for (const Spec& s : specs) {
        if (s.suffix) {
            if (s.a == 0) continue;
            uint64_t n = std::min(s.a, content_length);
            result.ranges.push_back({content_length - n, content_length - 1});
        } else {
            if (s.a >= content_length) continue;
            uint64_t last = s.b ? std::min(*s.b, content_length - 1) : content_length - 1;
            result.ranges.push_back({s.a, last});
        }
    }
    if (result.ranges.empty()) return result;
    result.status = RangeStatus::satisfiable;
    if (result.ranges.size() > 1) {
        auto& r = result.ranges;
        std::sort(r.begin(), r.end(), [](const ByteRange& x, const ByteRange& y) {
            return x.first < y.first || (x.first == y.first && x.last < y.last);
        });
        size_t out = 0;
        for (size_t i = 1; i < r.size(); ++i) {
            // Adjacent when r[i].first == r[out].last + 1; last < content_length <= max,
            // so last + 1 cannot overflow.
            if (r[i].first <= r[out].last + 1)
                r[out].last = std::max(r[out].last, r[i].last);
            else
                r[++out] = r[i];
        }
        r.resize(out + 1);
    }
    return result;
}

std::string content_range(const ByteRange& range, uint64_t length) {
    return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
           std::to_string(length);
}

std::string unsatisfied_range(uint64_t length) {
    return "bytes */" + std::to_string(length);
}

// ---- HTTP dates ----

namespace {

constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + int64_t(doe) - 719468;
}

bool is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
    static constexpr unsigned kLen[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : kLen[m - 1];
}

// A cursor over the date text; every method consumes on success only.
struct Cursor {
    std::string_view s;
    bool lit(std::string_view l) {
        if (s.substr(0, l.size()) != l) return false;
        s.remove_prefix(l.size());
        return true;
    }
    std::optional<unsigned> digits(size_t n) {
        if (s.size() < n) return std::nullopt;
        unsigned v = 0;
        for (size_t i = 0; i < n; ++i) {
            if (!is_digit(s[i])) return std::nullopt;
            v = v * 10 + unsigned(s[i] - '0');
        }
        s.remove_prefix(n);
        return v;
    }
    template <size_t N>
    std::optional<unsigned> name(const std::array<std::string_view, N>& names) {
        for (size_t i = 0; i < N; ++i)
            if (lit(names[i])) return unsigned(i);
        return std::nullopt;
    }
};

struct Fields {
    int64_t year;
    unsigned month, day, hour, minute, second; // month 1-12
};

// time-of-day = hour ":" minute ":" second
bool parse_time(Cursor& c, Fields& f) {
    auto h = c.digits(2);
    if (!h || !c.lit(":")) return false;
    auto m = c.digits(2);
    if (!m || !c.lit(":")) return false;
    auto s = c.digits(2);
    if (!s) return false;
    f.hour = *h, f.minute = *m, f.second = *s;
    return true;
}

std::optional<std::time_t> to_time(const Fields& f) {
    if (f.month < 1 || f.month > 12 || f.day < 1 || f.day > days_in_month(f.year, f.month))
        return std::nullopt;
    if (f.hour > 23 || f.minute > 59 || f.second > 60) return std::nullopt; // 60: leap second
    int64_t t =
        days_from_civil(f.year, f.month, f.day) * 86400 + f.hour * 3600 + f.minute * 60 + f.second;
    return std::time_t(t);
}

std::optional<Fields> parse_imf(std::string_view text) {
    // Sun, 06 Nov 1994 08:49:37 GMT
    Cursor c{text};
    Fields f{};
    if (!c.name(kDays) || !c.lit(", ")) return std::nullopt;
    auto d = c.digits(2);
    if (!d || !c.lit(" ")) return std::nullopt;
    auto m = c.name(kMonths);
    if (!m || !c.lit(" ")) return std::nullopt;
    auto y = c.digits(4);
    if (!y || !c.lit(" ") || !parse_time(c, f) || !c.lit(" GMT") || !c.s.empty())
        return std::nullopt;
    f.year = *y, f.month = *m + 1, f.day = *d;
    return f;
}

std::optional<Fields> parse_rfc850(std::string_view text, std::time_t now) {
    // Sunday, 06-Nov-94 08:49:37 GMT
    Cursor c{text};
    Fields f{};
    if (!c.name(kLongDays) || !c.lit(", ")) return std::nullopt;
    auto d = c.digits(2);
    if (!d || !c.lit("-")) return std::nullopt;
    auto m = c.name(kMonths);
    if (!m || !c.lit("-")) return std::nullopt;
    auto yy = c.digits(2);
    if (!yy || !c.lit(" ") || !parse_time(c, f) || !c.lit(" GMT") || !c.s.empty())
        return std::nullopt;
    // RFC 9110 5.6.7: more than 50 years in the future -> the most recent past year with
    // the same two digits. The year of now is close enough for that rule.
    int64_t cur = 1970 + int64_t(now) / 31556952; // average Gregorian year in seconds
    int64_t year = cur - ((cur % 100) + 100) % 100 + *yy;
    if (year > cur + 50)
        year -= 100;
    else if (year < cur - 49)
        year += 100;
    f.year = year, f.month = *m + 1, f.day = *d;
    return f;
}

std::optional<Fields> parse_asctime(std::string_view text) {
    // Sun Nov  6 08:49:37 1994
    Cursor c{text};
    Fields f{};
    if (!c.name(kDays) || !c.lit(" ")) return std::nullopt;
    auto m = c.name(kMonths);
    if (!m || !c.lit(" ")) return std::nullopt;
    std::optional<unsigned> d;
    if (c.lit(" "))
        d = c.digits(1);
    else
        d = c.digits(2);
    if (!d || !c.lit(" ") || !parse_time(c, f) || !c.lit(" ")) return std::nullopt;
    auto y = c.digits(4);
    if (!y || !c.s.empty()) return std::nullopt;
    f.year = *y, f.month = *m + 1, f.day = *d;
    return f;
}

} // namespace

std::optional<std::time_t> parse_http_date(std::string_view text, std::time_t now) {
    text = trim_ows(text);
    std::optional<Fields> f = parse_imf(text);
    if (!f) f = parse_rfc850(text, now);
    if (!f) f = parse_asctime(text);
    if (!f) return std::nullopt;
    return to_time(*f);
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
    return parse_http_date(text, std::time(nullptr));
}

std::string format_http_date(std::time_t t) {
    // Civil date from days since the epoch (H. Hinnant's civil_from_days): no locale, no
    // gmtime range limits.
    int64_t secs = int64_t(t);
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) rem += 86400, days -= 1;
    unsigned weekday = unsigned(((days % 7) + 11) % 7); // 1970-01-01 was a Thursday
    int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = unsigned(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const int64_t y = int64_t(yoe) + era * 400 + (m <= 2);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02u:%02u:%02u GMT", kDays[weekday].data(),
                  d, kMonths[m - 1].data(), static_cast<long long>(y), unsigned(rem / 3600),
                  unsigned(rem / 60 % 60), unsigned(rem % 60));
    return buf;
}

// ---- Entity tags ----

namespace {

// etagc = %x21 / %x23-7E / obs-text
bool is_etagc(char c) {
    auto u = static_cast<unsigned char>(c);
    return u == 0x21 || (u >= 0x23 && u != 0x7F);
}

// Parses one entity-tag at the start of s; on success removes it from s.
std::optional<EntityTag> take_etag(std::string_view& s) {
    EntityTag tag;
    std::string_view p = s;
    if (p.substr(0, 2) == "W/") tag.weak = true, p.remove_prefix(2);
    if (p.empty() || p.front() != '"') return std::nullopt;
    size_t i = 1;
    while (i < p.size() && is_etagc(p[i]))
        ++i;
    if (i >= p.size() || p[i] != '"') return std::nullopt;
    tag.opaque = p.substr(0, i + 1);
    s = p.substr(i + 1);
    return tag;
}

std::optional<EntityTag> parse_single_etag(std::string_view s) {
    s = trim_ows(s);
    auto tag = take_etag(s);
    if (!tag || !s.empty()) return std::nullopt;
    return tag;
}

bool strong_match(const EntityTag& a, const EntityTag& b) {
    return !a.weak && !b.weak && a.opaque == b.opaque;
}
bool weak_match(const EntityTag& a, const EntityTag& b) {
    return a.opaque == b.opaque;
}

} // namespace

std::optional<std::vector<EntityTag>> parse_etag_list(std::string_view text) {
    std::vector<EntityTag> out;
    std::string_view s = text;
    while (true) {
        // Skip OWS and empty elements.
        while (!s.empty() && (is_ows(s.front()) || s.front() == ','))
            s.remove_prefix(1);
        if (s.empty()) break;
        auto tag = take_etag(s);
        if (!tag) return std::nullopt;
        out.push_back(*tag);
        while (!s.empty() && is_ows(s.front()))
            s.remove_prefix(1);
        if (!s.empty() && s.front() != ',') return std::nullopt;
    }
    if (out.empty()) return std::nullopt;
    return out;
}

// ---- Preconditions ----

namespace {

enum class ListMatch { match, no_match, invalid };

// "*" matches any current representation; otherwise compare against each listed tag.
ListMatch match_list(std::string_view field, std::string_view etag, bool strong) {
    if (trim_ows(field) == "*") return ListMatch::match;
    auto list = parse_etag_list(field);
    if (!list) return ListMatch::invalid;
    auto ours = parse_single_etag(etag);
    if (!ours) return ListMatch::no_match;
    for (const EntityTag& t : *list)
        if (strong ? strong_match(t, *ours) : weak_match(t, *ours)) return ListMatch::match;
    return ListMatch::no_match;
}

} // namespace

Precondition evaluate(std::optional<std::string_view> if_match,
                      std::optional<std::string_view> if_none_match,
                      std::optional<std::string_view> if_modified_since,
                      std::optional<std::string_view> if_unmodified_since, std::string_view etag,
                      std::time_t last_modified, bool is_get_or_head) {
    // Step 1 / 2.
    if (if_match) {
        if (match_list(*if_match, etag, true) != ListMatch::match) return Precondition::failed;
    } else if (if_unmodified_since) {
        auto date = parse_http_date(*if_unmodified_since);
        if (date && last_modified > *date) return Precondition::failed;
    }
    // Step 3 / 4.
    if (if_none_match) {
        if (match_list(*if_none_match, etag, false) == ListMatch::match)
            return is_get_or_head ? Precondition::not_modified : Precondition::failed;
    } else if (if_modified_since && is_get_or_head) {
        auto date = parse_http_date(*if_modified_since);
        if (date && last_modified <= *date) return Precondition::not_modified;
    }
    return Precondition::proceed;
}

bool if_range_allows(std::string_view if_range, std::string_view etag, std::time_t last_modified) {
    std::string_view v = trim_ows(if_range);
    if (v.empty()) return false;
    if (v.front() == '"' || v.substr(0, 2) == "W/") {
        auto theirs = parse_single_etag(v);
        auto ours = parse_single_etag(etag);
        return theirs && ours && strong_match(*theirs, *ours);
    }
    auto date = parse_http_date(v);
    return date && *date == last_modified;
}

// ---- multipart/byteranges ----

namespace {

void check_field(std::string_view v, const char* what) {
    if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        throw std::invalid_argument(std::string(what) + " holds CR, LF or NUL");
}

uint64_t add(uint64_t a, uint64_t b) {
    if (a > UINT64_MAX - b) throw std::overflow_error("multipart body length overflows");
    return a + b;
}

} // namespace

std::string multipart_boundary() {
    unsigned char bytes[12];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        got += size_t(n);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof bytes);
    for (unsigned char b : bytes) {
        out += kHex[b >> 4];
        out += kHex[b & 15];
    }
    return out;
}

std::string multipart_content_type(std::string_view boundary) {
    return "multipart/byteranges; boundary=" + std::string(boundary);
}

std::string multipart_part_header(std::string_view boundary, std::string_view content_type,
                                  const ByteRange& range, uint64_t length) {
    check_field(boundary, "boundary");
    check_field(content_type, "content type");
    std::string out = "\r\n--";
    out += boundary;
    out += "\r\n";
    if (!content_type.empty()) {
        out += "Content-Type: ";
        out += content_type;
        out += "\r\n";
    }
    out += "Content-Range: ";
    out += content_range(range, length);
    out += "\r\n\r\n";
    return out;
}

std::string multipart_trailer(std::string_view boundary) {
    check_field(boundary, "boundary");
    return "\r\n--" + std::string(boundary) + "--\r\n";
}

uint64_t multipart_length(std::string_view boundary, std::string_view content_type,
                          const std::vector<ByteRange>& ranges, uint64_t length) {
    uint64_t total = multipart_trailer(boundary).size();
    for (const ByteRange& r : ranges) {
        total = add(total, multipart_part_header(boundary, content_type, r, length).size());
        total = add(total, r.size());
    }
    return total;
}

} // namespace strata::blockd

#include "cache_control.hh"

#include <algorithm>
#include <array>
#include <string>
#include <strings.h>

namespace strata::gatewayd {

namespace {

constexpr std::int64_t delta_cap = std::int64_t{1} << 31; // RFC 9111 1.2.2

bool ows(char c) {
    return c == ' ' || c == '\t';
}

bool same(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// One directive's value: a malformed number counts as 0, erring towards "stale".
std::int64_t seconds_or_zero(std::string_view v) {
    return parse_delta_seconds(v).value_or(0);
}

int two_digits(std::string_view s, std::size_t at) {
    if (at + 2 > s.size() || s[at] < '0' || s[at] > '9' || s[at + 1] < '0' || s[at + 1] > '9')
        return -1;
    return (s[at] - '0') * 10 + (s[at + 1] - '0');
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

} // namespace

std::optional<std::int64_t> parse_delta_seconds(std::string_view t) {
    while (!t.empty() && ows(t.front()))
        t.remove_prefix(1);
    while (!t.empty() && ows(t.back()))
        t.remove_suffix(1);
    if (t.empty()) return std::nullopt;
    std::int64_t n = 0;
    for (char c : t) {
        if (c < '0' || c > '9') return std::nullopt;
        n = std::min(delta_cap, n * 10 + (c - '0'));
    }
    return n;
}

void parse_cache_control(std::string_view v, CacheDirectives& cc) {
    std::size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && (ows(v[i]) || v[i] == ','))
            ++i;
        std::size_t name_start = i;
        while (i < v.size() && v[i] != '=' && v[i] != ',' && !ows(v[i]))
            ++i;
        std::string_view name = v.substr(name_start, i - name_start);
        while (i < v.size() && ows(v[i]))
            ++i;
        std::string value;
        bool has_value = false;
        if (i < v.size() && v[i] == '=') {
            has_value = true;
            ++i;
            while (i < v.size() && ows(v[i]))
                ++i;
            if (i < v.size() && v[i] == '"') { // quoted-string: commas inside belong to it
                ++i;
                while (i < v.size() && v[i] != '"') {
                    if (v[i] == '\\' && i + 1 < v.size()) ++i;
                    value += v[i++];
                }
                if (i < v.size()) ++i; // the closing quote
            } else {
                while (i < v.size() && v[i] != ',' && !ows(v[i]))
                    value += v[i++];
            }
        }
        // Whatever is left up to the next comma is junk of this directive.
        while (i < v.size() && v[i] != ',')
            ++i;
        if (name.empty()) continue;
        if (same(name, "no-store"))
            cc.no_store = true;
        else if (same(name, "no-cache"))
            cc.no_cache = true;
        else if (same(name, "private"))
            cc.private_ = true;
        else if (same(name, "public"))
            cc.public_ = true;
        else if (same(name, "must-revalidate"))
            cc.must_revalidate = true;
        else if (same(name, "proxy-revalidate"))
            cc.proxy_revalidate = true;
        else if (same(name, "only-if-cached"))
            cc.only_if_cached = true;
        else if (same(name, "max-age"))
            cc.max_age = std::min(cc.max_age.value_or(delta_cap), seconds_or_zero(value));
        else if (same(name, "s-maxage"))
            cc.s_maxage = std::min(cc.s_maxage.value_or(delta_cap), seconds_or_zero(value));
        else if (same(name, "min-fresh"))
            cc.min_fresh = seconds_or_zero(value);
        else if (same(name, "max-stale")) // without a value: any staleness
            cc.max_stale = has_value ? seconds_or_zero(value) : delta_cap;
    }
}

CacheDirectives parse_cache_control(std::string_view value) {
    CacheDirectives cc;
    parse_cache_control(value, cc);
    return cc;
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
    while (!s.empty() && ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && ows(s.back()))
        s.remove_suffix(1);
    // "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 characters.
    static constexpr std::array<std::string_view, 7> days = {"Mon", "Tue", "Wed", "Thu",
                                                             "Fri", "Sat", "Sun"};
    static constexpr std::array<std::string_view, 12> months = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
        return std::nullopt;
    if (std::find(days.begin(), days.end(), s.substr(0, 3)) == days.end()) return std::nullopt;
    auto month = std::find(months.begin(), months.end(), s.substr(8, 3));
    if (month == months.end()) return std::nullopt;
    int day = two_digits(s, 5), c = two_digits(s, 12), y = two_digits(s, 14);
    int hour = two_digits(s, 17), min = two_digits(s, 20), sec = two_digits(s, 23);
    if (day < 1 || c < 0 || y < 0 || hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 ||
        sec > 60)
        return std::nullopt;
    const auto m = static_cast<unsigned>(month - months.begin() + 1);
    const int year = c * 100 + y;
    static constexpr std::array<int, 12> month_days = {31, 29, 31, 30, 31, 30,
                                                       31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > month_days[m - 1] || (m == 2 && day == 29 && !leap)) return std::nullopt;
    const std::int64_t t =
        days_from_civil(year, m, static_cast<unsigned>(day)) * 86400 + hour * 3600 + min * 60 + sec;
    return static_cast<std::time_t>(t);
}

bool heuristically_cacheable(int status) {
    switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return true;
    default:
        return false;
    }
}

bool cacheable_status(int status) {
    return heuristically_cacheable(status) || status == 302 || status == 307;
}

Freshness freshness_lifetime(const FreshnessInput& in) {
    Freshness f;
    const CacheDirectives none;
    const CacheDirectives& cc = in.directives ? *in.directives : none;
    if (cc.s_maxage) {
        f.lifetime_ms = *cc.s_maxage * 1000;
        f.explicit_ = true;
    } else if (cc.max_age) {
        f.lifetime_ms = *cc.max_age * 1000;
        f.explicit_ = true;
    } else if (in.has_expires) {
        const std::time_t date = in.date.value_or(in.response_time);
        f.lifetime_ms = in.expires ? std::max<std::int64_t>(0, (*in.expires - date)) * 1000 : 0;
        f.explicit_ = true;
    } else if (in.last_modified && heuristically_cacheable(in.status)) {
        const std::time_t date = in.date.value_or(in.response_time);
        const std::int64_t since = std::max<std::int64_t>(0, date - *in.last_modified);
        f.lifetime_ms = std::min<std::int64_t>(since * 100, 86400 * 1000); // 10%, a day at most
    }
    return f;
}

std::int64_t initial_age_ms(std::optional<std::int64_t> age_header, std::optional<std::time_t> date,
                            std::int64_t request_ms, std::int64_t response_ms) {
    std::int64_t apparent = date ? std::max<std::int64_t>(0, response_ms - *date * 1000) : 0;
    // A Date in the same second as the response (it has no milliseconds) is not an age.
    if (apparent < 1000) apparent = 0;
    const std::int64_t delay = std::max<std::int64_t>(0, response_ms - request_ms);
    const std::int64_t corrected = age_header.value_or(0) * 1000 + delay;
    return std::max(apparent, corrected);
}

} // namespace strata::gatewayd

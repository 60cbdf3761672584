// libFuzzer target: the gateway cache's header parsers (Cache-Control, HTTP dates, Age) on
// arbitrary text never crash, and what they return is sane: delta-seconds within 0..2^31,
// a freshness lifetime never negative.
#include "cache_control.hh"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace strata::gatewayd;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // First line: a Cache-Control value; the rest, a second field of the same message.
    auto nl = text.find('\n');
    CacheDirectives cc = parse_cache_control(text.substr(0, nl));
    if (nl != std::string_view::npos) parse_cache_control(text.substr(nl + 1), cc);
    constexpr std::int64_t cap = std::int64_t{1} << 31;
    for (const auto& v : {cc.max_age, cc.s_maxage, cc.min_fresh, cc.max_stale})
        if (v && (*v < 0 || *v > cap)) std::abort();
    if (auto age = parse_delta_seconds(text); age && (*age < 0 || *age > cap)) std::abort();
    FreshnessInput in;
    in.directives = &cc;
    in.response_time = 1'700'000'000;
    in.has_expires = true;
    in.expires = parse_http_date(text);
    in.last_modified = parse_http_date(text.substr(0, nl));
    for (int status : {200, 302, 500}) {
        in.status = status;
        if (freshness_lifetime(in).lifetime_ms < 0) std::abort();
        in.has_expires = false;
    }
    (void)initial_age_ms(parse_delta_seconds(text.substr(0, nl)), in.expires, 0, 1000);
    return 0;
}

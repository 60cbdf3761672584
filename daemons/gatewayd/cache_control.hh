// What HTTP caching headers say (RFC 9111), for the gateway's response cache
// (response_cache.hh): Cache-Control directives of requests and responses, HTTP dates
// (Expires, Date, Last-Modified), Age, and a stored answer's freshness lifetime.
//
// Freshness lifetime, in order: s-maxage (a shared cache's own), max-age, Expires minus the
// response time. Without any of these, a heuristic: 10% of the time since Last-Modified,
// at most a day (RFC 9111 4.2.2), and only for statuses that are heuristically cacheable;
// without Last-Modified either, the lifetime is 0 (stale at once: usable only after a
// revalidation, when the answer has a validator).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

namespace strata::gatewayd {

struct CacheDirectives {
    bool no_store = false;
    bool no_cache = false; // with or without field names: always revalidate
    bool private_ = false; // with or without field names: a shared cache never stores it
    bool public_ = false;
    bool must_revalidate = false;
    bool proxy_revalidate = false;
    bool only_if_cached = false;
    std::optional<std::int64_t> max_age, s_maxage, min_fresh, max_stale;
};

// Adds the directives of one Cache-Control field value to `into` (a message may carry
// several fields). Unknown directives are ignored; a malformed delta-seconds makes its
// directive count as 0 ("max-age=x" is treated as max-age=0: stale), quoted values are
// understood, values over 2^31 are capped there (RFC 9111 1.2.2).
void parse_cache_control(std::string_view value, CacheDirectives& into);
CacheDirectives parse_cache_control(std::string_view value);

// delta-seconds (Age): digits only, capped at 2^31; nullopt when not a number.
std::optional<std::int64_t> parse_delta_seconds(std::string_view text);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", surrounding spaces ignored); nullopt for
// anything else (the obsolete forms included: an Expires that does not parse means
// "already expired", RFC 9111 5.3).
std::optional<std::time_t> parse_http_date(std::string_view text);

// Statuses a cache may store with a heuristic lifetime (RFC 9110 15.1).
bool heuristically_cacheable(int status);
// Statuses the gateway stores at all (with explicit freshness for the others than above):
// the heuristic ones plus 302, 307.
bool cacheable_status(int status);

// What an answer says about its own freshness.
struct FreshnessInput {
    int status = 200;
    const CacheDirectives* directives = nullptr; // the response's
    bool has_expires = false;                    // an Expires field, valid or not
    std::optional<std::time_t> expires;          // its date when valid
    std::optional<std::time_t> date;             // Date (response time when absent)
    std::optional<std::time_t> last_modified;
    std::time_t response_time = 0;
};

struct Freshness {
    std::int64_t lifetime_ms = 0;
    bool explicit_ = false; // from s-maxage, max-age or Expires, not the heuristic
};

Freshness freshness_lifetime(const FreshnessInput& in);

// corrected_initial_age of RFC 9111 4.2.3, in milliseconds: the larger of the apparent age
// (response time minus Date, never negative) and Age plus the exchange's own delay.
std::int64_t initial_age_ms(std::optional<std::int64_t> age_header, std::optional<std::time_t> date,
                            std::int64_t request_ms, std::int64_t response_ms);

} // namespace strata::gatewayd

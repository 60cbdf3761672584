// A moment as RFC 3339 UTC to the second ("2027-01-15T08:00:00Z"): how Strata writes times
// in JSON answers and messages (log lines keep their own format with milliseconds).
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace strata::log {

inline std::string utc_time(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

inline std::string utc_time(std::chrono::system_clock::time_point t) {
    return utc_time(std::chrono::system_clock::to_time_t(t));
}

} // namespace strata::log

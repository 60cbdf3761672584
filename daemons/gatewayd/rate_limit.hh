// Token buckets for the gateway's per-route rate limits (route option rate=N/s|m|h, burst=,
// rate_key=). Each key (a client address, a user, an API key id, or the route itself) has a
// bucket of `burst` tokens, refilled continuously at `rate` per second; a request takes one
// token or is refused with the time until one is back.
//
// Memory is bounded: past max_keys buckets, the ones idle longest are dropped. A dropped
// bucket was full or nearly so by then (idle for at least burst / rate seconds when the
// table is that large), so forgetting it gives nobody more than a fresh client gets.
// Not thread-safe: the gateway calls it from its loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace strata::gatewayd {

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    struct Verdict {
        bool allowed = false;
        std::uint64_t limit = 0;     // the burst: RateLimit-Limit
        std::uint64_t remaining = 0; // whole tokens left after this request
        double reset_seconds = 0;    // until the bucket is full again: RateLimit-Reset
        double retry_after = 0;      // refused: until one token is back
    };

    // rate_per_second > 0, burst >= 1.
    RateLimiter(double rate_per_second, std::uint64_t burst, std::size_t max_keys = 100000);

    Verdict take(std::string_view key, Clock::time_point now);
    std::size_t keys() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens;
        Clock::time_point updated;
        std::list<std::string>::iterator lru; // position in idle_order_
    };
    double rate_;
    double burst_;
    std::size_t max_keys_;
    std::unordered_map<std::string, Bucket> buckets_;
    std::list<std::string> idle_order_; // least recently used first
};

} // namespace strata::gatewayd

// The retry budget of a pool (proxy_config.hh: retry_budget= retry_min_per_s=), after
// Linkerd's and Envoy's: a retry is allowed while the pool's retries of the last 10 seconds
// stay within retry_budget percent of its requests in that time, or while fewer than
// retry_min_per_s were made in the current second (so a quiet pool can still retry). This
// keeps retries from multiplying the load on a pool that is failing as a whole. Pure: the
// caller gives the time.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace strata::gatewayd {

class RetryBudget {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr int window_seconds = 10;

    RetryBudget(int percent, int min_per_second) : percent_(percent), min_(min_per_second) {}

    // A request's first attempt.
    void request(Clock::time_point now);
    // True (and counted) when a retry fits in the budget now.
    bool try_retry(Clock::time_point now);

private:
    struct Bucket {
        std::int64_t second = -1;
        std::uint64_t requests = 0, retries = 0;
    };
    Bucket& bucket(Clock::time_point now);

    int percent_, min_;
    std::array<Bucket, window_seconds> buckets_{};
};

} // namespace strata::gatewayd

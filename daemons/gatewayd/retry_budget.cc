#include "retry_budget.hh"

namespace strata::gatewayd {

RetryBudget::Bucket& RetryBudget::bucket(Clock::time_point now) {
    const std::int64_t s =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    Bucket& b = buckets_[static_cast<std::size_t>(((s % window_seconds) + window_seconds) %
                                                  window_seconds)];
    if (b.second != s) b = Bucket{s, 0, 0}; // a second that left the window
    return b;
}

void RetryBudget::request(Clock::time_point now) {
    ++bucket(now).requests;
}

bool RetryBudget::try_retry(Clock::time_point now) {
    Bucket& current = bucket(now);
    bool ok = current.retries < static_cast<std::uint64_t>(min_);
    if (!ok) {
        std::uint64_t requests = 0, retries = 0;
        for (const auto& b : buckets_)
            if (b.second > current.second - window_seconds) {
                requests += b.requests;
                retries += b.retries;
            }
        // (retries + 1) / requests <= percent / 100, in integers.
        ok = (retries + 1) * 100 <= requests * static_cast<std::uint64_t>(percent_);
    }
    if (ok) ++current.retries;
    return ok;
}

} // namespace strata::gatewayd

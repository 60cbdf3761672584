#include "rate_limit.hh"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace strata::gatewayd {

RateLimiter::RateLimiter(double rate_per_second, std::uint64_t burst, std::size_t max_keys)
    : rate_(rate_per_second), burst_(static_cast<double>(burst)), max_keys_(max_keys) {
    if (!(rate_per_second > 0) || burst < 1 || max_keys < 1)
        throw std::invalid_argument("rate limiter: rate, burst and max_keys must be positive");
}

RateLimiter::Verdict RateLimiter::take(std::string_view key, Clock::time_point now) {
    auto it = buckets_.find(std::string(key));
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_keys_) { // forget the bucket idle longest
            buckets_.erase(idle_order_.front());
            idle_order_.pop_front();
        }
        idle_order_.emplace_back(key);
        it = buckets_.emplace(std::string(key), Bucket{burst_, now, std::prev(idle_order_.end())})
                 .first;
    } else {
        idle_order_.splice(idle_order_.end(), idle_order_, it->second.lru);
    }
    Bucket& b = it->second;
    if (now > b.updated) {
        double elapsed = std::chrono::duration<double>(now - b.updated).count();
        b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
        b.updated = now;
    }
    Verdict v;
    v.limit = static_cast<std::uint64_t>(burst_);
    if (b.tokens >= 1) {
        b.tokens -= 1;
        v.allowed = true;
    } else {
        v.retry_after = (1 - b.tokens) / rate_;
    }
    v.remaining = static_cast<std::uint64_t>(std::floor(b.tokens));
    v.reset_seconds = (burst_ - b.tokens) / rate_;
    return v;
}

} // namespace strata::gatewayd

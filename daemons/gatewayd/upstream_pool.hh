// One upstream pool of the proxy: its members (each a kept-alive AsyncClient), the balancer
// that picks among them (balancer.hh), the active health checks (health_check.hh), passive
// ejection (outlier.hh) and the retry budget (retry_budget.hh). Lives on the daemon's loop.
#pragma once

#include "balancer.hh"
#include "health_check.hh"
#include "loop_timer.hh"
#include "metrics/metrics.hh"
#include "outlier.hh"
#include "proxy_config.hh"
#include "retry_budget.hh"

#include <memory>
#include <optional>
#include <string>
#include <uv.h>
#include <vector>

namespace strata::http_client {
class AsyncClient;
struct Options;
} // namespace strata::http_client

namespace strata::gatewayd {

// Where a pool's own metrics go; each may be null.
struct PoolMetrics {
    metrics::Family<metrics::Counter>* retries = nullptr;   // {pool}
    metrics::Family<metrics::Gauge>* healthy = nullptr;     // {pool,member}: 1 up, 0 not
    metrics::Family<metrics::Counter>* ejections = nullptr; // {pool,member}
};

class UpstreamPool {
public:
    using Clock = std::chrono::steady_clock;
    struct Member {
        std::string target;
        std::unique_ptr<http_client::AsyncClient> client;
    };

    UpstreamPool(uv_loop_t* loop, const PoolSpec& spec, const http_client::Options& client,
                 const PoolMetrics& metrics);
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    const std::string name;
    std::vector<Member> members;
    const PoolSpec& spec() const { return spec_; }

    // A request's first member: nullopt when every member is down or ejected.
    std::optional<std::size_t> pick(std::string_view key);
    // Another member for a retry (not in `tried`), within retries= and the budget; counted.
    std::optional<std::size_t> retry(std::string_view key, const std::vector<std::size_t>& tried);

    // An exchange starts on / ends with a member. failed: no connection, reset, timeout or a
    // 5xx answer (counts towards ejection); neutral: neither (cancelled, refused here).
    void begin(std::size_t member);
    enum class Outcome { ok, failed, neutral };
    void end(std::size_t member, Outcome outcome);

    bool up(std::size_t member) const { return !health_ || health_->up(member); }

private:
    bool usable(std::size_t member, Clock::time_point now) const;
    void refresh_gauges();
    void ejections_changed();

    PoolSpec spec_;
    Balancer balancer_;
    OutlierDetector outlier_;
    RetryBudget budget_;
    PoolMetrics metrics_;
    std::vector<metrics::Gauge*> healthy_; // per member, or empty
    LoopTimer ejection_end_;               // refreshes the gauges when an ejection ends
    std::unique_ptr<HealthChecker> health_;
};

} // namespace strata::gatewayd

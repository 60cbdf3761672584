#include "upstream_pool.hh"

#include "http_client/async_client.hh"
#include "log/log.hh"

#include <algorithm>

namespace strata::gatewayd {

UpstreamPool::UpstreamPool(uv_loop_t* loop, const PoolSpec& spec,
                           const http_client::Options& client, const PoolMetrics& metrics)
    : name(spec.name), spec_(spec), balancer_(spec.balance, spec.members),
      outlier_(spec.outlier, spec.members.size()),
      budget_(spec.retry.budget_percent, spec.retry.min_per_second), metrics_(metrics),
      ejection_end_(loop, [this] { ejections_changed(); }) {
    for (const auto& m : spec.members) {
        members.push_back(
            {m.target, std::make_unique<http_client::AsyncClient>(loop, m.target, client)});
        if (metrics_.healthy) healthy_.push_back(&metrics_.healthy->with({name, m.target}));
    }
    if (!spec.health.path.empty())
        health_ = std::make_unique<HealthChecker>(
            loop, spec.health, spec.members, [this](std::size_t i, bool up) {
                log::warning("pool {}: {} is {} (health check {})", name, members[i].target,
                             up ? "up again" : "down", spec_.health.path);
                refresh_gauges();
            });
    refresh_gauges();
}

// The health checker goes first, then the clients, while everything their callbacks use
// (cancelled exchanges end through end()) still stands.
UpstreamPool::~UpstreamPool() {
    health_.reset();
    for (auto& m : members)
        m.client.reset();
}

bool UpstreamPool::usable(std::size_t i, Clock::time_point now) const {
    return up(i) && !outlier_.ejected(i, now);
}

void UpstreamPool::refresh_gauges() {
    const auto now = Clock::now();
    for (std::size_t i = 0; i < healthy_.size(); ++i)
        healthy_[i]->set(usable(i, now) ? 1 : 0);
}

std::optional<std::size_t> UpstreamPool::pick(std::string_view key) {
    const auto now = Clock::now();
    budget_.request(now);
    return balancer_.pick(key, [&](std::size_t i) { return usable(i, now); });
}

std::optional<std::size_t> UpstreamPool::retry(std::string_view key,
                                               const std::vector<std::size_t>& tried) {
    if (tried.size() > static_cast<std::size_t>(spec_.retry.retries)) return std::nullopt;
    const auto now = Clock::now();
    auto next = balancer_.pick(key, [&](std::size_t i) {
        return usable(i, now) && std::find(tried.begin(), tried.end(), i) == tried.end();
    });
    if (!next || !budget_.try_retry(now)) return std::nullopt;
    if (metrics_.retries) metrics_.retries->with({name}).inc();
    return next;
}

void UpstreamPool::begin(std::size_t i) {
    balancer_.begin(i);
}

void UpstreamPool::end(std::size_t i, Outcome outcome) {
    balancer_.end(i);
    if (outcome == Outcome::ok) {
        outlier_.success(i);
        return;
    }
    if (outcome == Outcome::neutral) return;
    const auto now = Clock::now();
    if (auto span = outlier_.failure(i, now)) {
        log::warning("pool {}: {} ejected for {} ms after {} failures in a row", name,
                     members[i].target, span->count(), spec_.outlier.eject_after);
        if (metrics_.ejections) metrics_.ejections->with({name, members[i].target}).inc();
        ejections_changed();
    }
}

// The gauges follow ejections in and out: the timer wakes when the next one ends.
void UpstreamPool::ejections_changed() {
    refresh_gauges();
    const auto now = Clock::now();
    if (auto next = outlier_.next_return(now))
        ejection_end_.start(std::chrono::ceil<std::chrono::milliseconds>(*next - now) +
                            std::chrono::milliseconds(1));
}

} // namespace strata::gatewayd

// libFuzzer target: the gateway's pool and route syntax (gatewayd.conf [proxy]) on arbitrary
// text must parse or throw std::invalid_argument, never crash; what parses must match and
// rewrite paths without failing. A pool that parses is balanced (balancer.hh: its key taken
// from a request made of the third line, picks with members left out by its bytes), and its
// ejection and retry budget are driven by the same bytes: always a valid member or none.
#include "balancer.hh"
#include "http/message.hh"
#include "outlier.hh"
#include "proxy_config.hh"
#include "retry_budget.hh"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // First line: a pool; second: a route; third: a Host and a path to match.
    auto line = [&text]() {
        auto nl = text.find('\n');
        std::string_view l = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        return l;
    };
    std::string_view pool_text = line(), route_text = line(), probe = line();
    std::optional<strata::gatewayd::PoolSpec> pool;
    try {
        pool = strata::gatewayd::parse_pool(pool_text);
    } catch (const std::invalid_argument&) {
    }
    if (pool) {
        using namespace strata::gatewayd;
        strata::http::Request req;
        req.target = std::string(probe);
        req.path = std::string(probe.substr(0, probe.find('?')));
        req.remote_address = std::string(probe.substr(0, 45));
        req.headers.emplace("Cookie", std::string(probe));
        if (!pool->hash.name.empty()) req.headers.emplace(pool->hash.name, std::string(probe));
        const std::string key = balance_key(*pool, req);
        Balancer balancer(pool->balance, pool->members);
        OutlierDetector outlier(pool->outlier, pool->members.size());
        RetryBudget budget(pool->retry.budget_percent, pool->retry.min_per_second);
        auto now = OutlierDetector::Clock::time_point{} + std::chrono::hours(1);
        const std::size_t n = pool->members.size();
        for (std::size_t i = 0; i < probe.size() && i < 64; ++i) {
            const auto byte = static_cast<unsigned char>(probe[i]);
            auto usable = [&](std::size_t m) {
                return ((m + byte) % 3) != 0 && !outlier.ejected(m, now);
            };
            auto got = balancer.pick(byte & 1 ? std::string_view(key) : "", usable);
            if (got && (*got >= n || !usable(*got))) std::abort();
            if (got) {
                balancer.begin(*got);
                if (byte & 2)
                    (void)outlier.failure(*got, now);
                else
                    outlier.success(*got);
                if (byte & 4) balancer.end(*got);
            }
            budget.request(now);
            (void)budget.try_retry(now);
            if (outlier.ejected_count(now) * 100 >
                static_cast<std::size_t>(pool->outlier.max_percent) * n)
                std::abort();
            now += std::chrono::milliseconds(byte * 37);
        }
    }
    try {
        auto route = strata::gatewayd::parse_route(route_text);
        strata::gatewayd::RouteTable table({route});
        auto space = probe.find(' ');
        std::string_view host = probe.substr(0, space);
        std::string_view path = space == std::string_view::npos ? "/" : probe.substr(space + 1);
        if (const auto* r = table.match(host, path)) (void)strata::gatewayd::rewrite_path(*r, path);
    } catch (const std::invalid_argument&) {
    }
    return 0;
}

#include "balancer.hh"

#include "http/message.hh"

#include <algorithm>

namespace strata::gatewayd {

std::uint64_t stable_hash(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    // murmur3's fmix64: FNV alone leaves similar keys ("m#1", "m#2") close on the ring.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
    std::size_t i = 0;
    while (i < header.size()) {
        auto semi = header.find(';', i);
        std::string_view pair = header.substr(i, semi == header.npos ? header.npos : semi - i);
        while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t'))
            pair.remove_prefix(1);
        auto eq = pair.find('=');
        if (eq != pair.npos && pair.substr(0, eq) == name) {
            std::string_view v = pair.substr(eq + 1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
                v.remove_suffix(1);
            return v;
        }
        if (semi == header.npos) break;
        i = semi + 1;
    }
    return std::nullopt;
}

std::string balance_key(const PoolSpec& pool, const http::Request& req) {
    if (pool.balance == Balance::ip_hash) return req.remote_address;
    if (pool.balance != Balance::hash) return {};
    switch (pool.hash.kind) {
    case HashKey::Kind::uri:
        return req.target.empty() ? req.path : req.target;
    case HashKey::Kind::header:
        return std::string(req.header(pool.hash.name).value_or(""));
    case HashKey::Kind::cookie:
        // Every Cookie header counts (HTTP/2 clients may split them).
        for (auto [it, end] = req.headers.equal_range("Cookie"); it != end; ++it)
            if (auto v = cookie_value(it->second, pool.hash.name)) return std::string(*v);
        return {};
    }
    return {};
}

Balancer::Balancer(Balance balance, const std::vector<MemberSpec>& members) : balance_(balance) {
    long total_weight = 0;
    for (const auto& m : members) {
        members_.push_back({m.weight, 0, 0});
        total_weight += m.weight;
    }
    if (balance != Balance::ip_hash && balance != Balance::hash) return;
    constexpr long max_points = 400000;
    const long per_weight = std::clamp(max_points / std::max(1L, total_weight), 1L, 100L);
    for (std::size_t i = 0; i < members.size(); ++i) {
        const long n = per_weight * members[i].weight;
        for (long p = 0; p < n; ++p) {
            auto h = stable_hash(members[i].target + "#" + std::to_string(p));
            ring_.push_back({static_cast<std::uint32_t>(h >> 32), static_cast<std::uint32_t>(i)});
        }
    }
    // Equal points (two members with one target) are ordered by member: deterministic.
    std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
        return a.hash != b.hash ? a.hash < b.hash : a.member < b.member;
    });
}

std::optional<std::size_t> Balancer::pick(std::string_view key, const Usable& usable) {
    if (!ring_.empty() && !key.empty()) return on_ring(key, usable);
    if (balance_ == Balance::least_conn) return least_conn(usable);
    return round_robin(usable);
}

// nginx's smooth weighted round robin: every member gains its weight, the richest is chosen
// and pays the total.
std::optional<std::size_t> Balancer::round_robin(const Usable& usable) {
    int total = 0;
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (!usable(i)) continue;
        Member& m = members_[i];
        m.current += m.weight;
        total += m.weight;
        if (!best || m.current > members_[*best].current) best = i;
    }
    if (best) members_[*best].current -= total;
    return best;
}

// Fewest in flight per unit of weight (compared crosswise: a/wa < b/wb); ties go round robin
// through `current`.
std::optional<std::size_t> Balancer::least_conn(const Usable& usable) {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (!usable(i)) continue;
        if (!best) {
            best = i;
            continue;
        }
        const Member& m = members_[i];
        const Member& b = members_[*best];
        auto lhs = m.active * static_cast<std::size_t>(b.weight);
        auto rhs = b.active * static_cast<std::size_t>(m.weight);
        if (lhs < rhs || (lhs == rhs && m.current < b.current)) best = i;
    }
    if (best) ++members_[*best].current;
    return best;
}

std::optional<std::size_t> Balancer::on_ring(std::string_view key, const Usable& usable) {
    const auto h = static_cast<std::uint32_t>(stable_hash(key) >> 32);
    auto start = std::lower_bound(ring_.begin(), ring_.end(), h,
                                  [](const Point& p, std::uint32_t v) { return p.hash < v; });
    std::size_t at = static_cast<std::size_t>(start - ring_.begin());
    // Walks the ring once at most, asking each member once.
    std::vector<bool> asked(members_.size(), false);
    std::size_t left = members_.size();
    for (std::size_t step = 0; step < ring_.size() && left > 0; ++step) {
        std::size_t m = ring_[(at + step) % ring_.size()].member;
        if (asked[m]) continue;
        if (usable(m)) return m;
        asked[m] = true;
        --left;
    }
    return std::nullopt;
}

} // namespace strata::gatewayd

// Which member of a pool takes a request (proxy_config.hh: balance=, hash=). Pure: no I/O, no
// clock; the caller says which members may be used (not tried yet, up, not ejected).
//
// - round_robin: nginx's smooth weighted round robin (weights 5,1,1 give a a b a c a a);
// - least_conn: the fewest requests in flight per unit of weight, ties in turn;
// - ip_hash and hash: a Ketama-style ring of 32-bit points, 100 per unit of weight (fewer
//   when the pool's weights add up to over 4000, to keep the ring under 400000 points), each
//   point hashed from the member's target, so a member added or removed takes or gives up
//   only its own arcs: about 1/N of the keys move. A key goes to the first point at or after
//   its hash whose member may be used. A request without a key (no such header or cookie, a
//   unix-socket client for ip_hash) goes round robin.
#pragma once

#include "proxy_config.hh"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::http {
struct Request;
}

namespace strata::gatewayd {

// A stable 64-bit hash (FNV-1a, then a 64-bit finalizer to spread the bits).
std::uint64_t stable_hash(std::string_view s);

// What ip_hash or hash=KEY hashes in this request; empty when it has none (or for
// round_robin and least_conn).
std::string balance_key(const PoolSpec& pool, const http::Request& request);

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or nullopt.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name);

class Balancer {
public:
    using Usable = std::function<bool(std::size_t)>;

    Balancer(Balance balance, const std::vector<MemberSpec>& members);

    // A usable member for this key (see above), or nullopt when none is usable.
    std::optional<std::size_t> pick(std::string_view key, const Usable& usable);

    // Requests in flight, for least_conn.
    void begin(std::size_t member) { ++members_[member].active; }
    void end(std::size_t member) {
        if (members_[member].active) --members_[member].active;
    }
    std::size_t active(std::size_t member) const { return members_[member].active; }
    std::size_t ring_points() const { return ring_.size(); }

private:
    std::optional<std::size_t> round_robin(const Usable& usable);
    std::optional<std::size_t> least_conn(const Usable& usable);
    std::optional<std::size_t> on_ring(std::string_view key, const Usable& usable);

    struct Member {
        int weight = 1;
        int current = 0;        // smooth weighted round robin
        std::size_t active = 0; // requests in flight
    };
    struct Point {
        std::uint32_t hash;
        std::uint32_t member;
    };
    Balance balance_;
    std::vector<Member> members_;
    std::vector<Point> ring_; // sorted by hash; empty unless ip_hash or hash
};

} // namespace strata::gatewayd

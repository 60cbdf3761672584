#pragma once
// Public value types of strata::queue.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace strata::queue {

using TimePoint = std::chrono::system_clock::time_point;
// Wall-clock time source (persisted times must survive a reboot, so not steady_clock).
using Clock = std::function<TimePoint()>;

struct Options {
    // How long a lease keeps an item invisible to other lease() calls.
    std::chrono::milliseconds visibility_timeout = std::chrono::seconds(30);
    // Leases an item may get before it is dead-lettered; 0 = retry forever.
    std::uint32_t max_attempts = 5;
    // Retry delay after the Nth failed attempt: min(backoff_max, backoff_base * 2^(N-1)).
    std::chrono::milliseconds backoff_base = std::chrono::seconds(1);
    std::chrono::milliseconds backoff_max = std::chrono::minutes(5);
    // 0..1: the retry delay is shortened by up to this fraction, by an amount derived from
    // (item id, attempt) - deterministic, so tests can predict it. 0 = no jitter.
    double jitter = 0.0;
    // How long an idempotency key is remembered after its enqueue.
    std::chrono::milliseconds idempotency_retention = std::chrono::hours(24);
    // Time source; empty = std::chrono::system_clock::now.
    Clock clock;
};

enum class State : std::uint8_t { pending = 0, leased = 1, dead = 2 };

struct Lease {
    std::uint64_t id = 0;
    std::string payload;
    std::uint32_t attempt = 0;     // 1 on the first lease of the item
    std::uint64_t lease_token = 0; // identifies this lease; never reused
    TimePoint expires_at;
};

struct Counts {
    std::uint64_t ready = 0;   // pending and visible now
    std::uint64_t delayed = 0; // pending, visible later (enqueue delay or retry backoff)
    std::uint64_t leased = 0;  // leased (including expired leases not yet reaped)
    std::uint64_t dead = 0;    // in the dead-letter list
};

struct ItemInfo {
    std::uint64_t id = 0;
    State state = State::pending;
    std::uint32_t attempts = 0; // leases so far (reset by requeue_dead)
    TimePoint enqueued_at;
    TimePoint due;          // pending: visible at; leased: lease expiry; dead: dead since
    std::string last_error; // reason of the last nack ("lease expired" after an expiry)
    std::string payload;
};

} // namespace strata::queue

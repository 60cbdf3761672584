#pragma once
// Snowflake IDs: 64-bit, time ordered, unique per node without coordination.
//
//   bit 63       0 (ids stay positive as int64, e.g. in JSON or SQL)
//   bits 62..22  milliseconds since 2026-01-01T00:00:00Z (41 bits: until 2095)
//   bits 21..12  node id, 0..1023
//   bits 11..0   sequence within the millisecond, 0..4095
//
// Generator::next() is lock-free and thread-safe: the last issued id is an atomic and each
// new id is installed with compare-and-swap, so ids of one Generator strictly increase
// across all threads. The timestamp part never goes back: when the clock steps backwards
// the generator keeps counting from the last timestamp it used, and when the 4096 sequence
// numbers of a millisecond are used up it moves on to the next millisecond logically
// (ahead of the clock, until the clock catches up). Uniqueness across restarts needs the
// clock not to step back over a restart, or the caller to pass the last id it issued
// (`after`) when it creates the Generator.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

namespace strata::ids {

inline constexpr std::int64_t epoch_unix_ms = 1767225600000; // 2026-01-01T00:00:00Z
inline constexpr int timestamp_bits = 41;
inline constexpr int node_bits = 10;
inline constexpr int sequence_bits = 12;
inline constexpr std::uint32_t max_node = (1u << node_bits) - 1;         // 1023
inline constexpr std::uint32_t max_sequence = (1u << sequence_bits) - 1; // 4095
inline constexpr std::uint64_t max_timestamp = (std::uint64_t{1} << timestamp_bits) - 1;

using Clock = std::function<std::chrono::system_clock::time_point()>;

struct Parts {
    std::uint64_t timestamp_ms; // milliseconds since epoch_unix_ms
    std::uint32_t node;
    std::uint32_t sequence;

    std::chrono::system_clock::time_point time() const {
        return std::chrono::system_clock::time_point(
            std::chrono::milliseconds(epoch_unix_ms + static_cast<std::int64_t>(timestamp_ms)));
    }
};

// Builds an id; throws std::out_of_range if a part does not fit its bits.
std::uint64_t compose(std::uint64_t timestamp_ms, std::uint32_t node, std::uint32_t sequence);
Parts decompose(std::uint64_t id) noexcept;

class Generator {
public:
    // node_id must be 0..1023 (std::out_of_range otherwise). An empty clock means
    // std::chrono::system_clock::now. Ids are issued strictly after `after` (if it is an
    // id of this node, e.g. the last one issued before a restart).
    explicit Generator(std::uint32_t node_id, Clock clock = {}, std::uint64_t after = 0);

    // Next id, greater than every id this Generator issued before. Throws
    // std::overflow_error once the 41-bit timestamp is exhausted (year 2095).
    std::uint64_t next();

    std::uint32_t node_id() const noexcept { return node_; }

private:
    std::uint64_t now_ms() const; // clock time since the epoch, clamped at 0

    std::uint32_t node_;
    Clock clock_;
    std::atomic<std::uint64_t> last_;
};

} // namespace strata::ids

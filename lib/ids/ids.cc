#include "ids/ids.hh"

#include <stdexcept>
#include <string>

namespace strata::ids {

namespace {
constexpr int node_shift = sequence_bits;
constexpr int timestamp_shift = sequence_bits + node_bits;
} // namespace

std::uint64_t compose(std::uint64_t timestamp_ms, std::uint32_t node, std::uint32_t sequence) {
    if (timestamp_ms > max_timestamp) throw std::out_of_range("ids: timestamp out of range");
    if (node > max_node) throw std::out_of_range("ids: node id out of range 0..1023");
    if (sequence > max_sequence) throw std::out_of_range("ids: sequence out of range 0..4095");
    return timestamp_ms << timestamp_shift | std::uint64_t{node} << node_shift | sequence;
}

Parts decompose(std::uint64_t id) noexcept {
    return Parts{(id >> timestamp_shift) & max_timestamp,
                 static_cast<std::uint32_t>(id >> node_shift) & max_node,
                 static_cast<std::uint32_t>(id) & max_sequence};
}

Generator::Generator(std::uint32_t node_id, Clock clock, std::uint64_t after)
    : node_(node_id), clock_(std::move(clock)) {
    if (node_id > max_node)
        throw std::out_of_range("ids: node id " + std::to_string(node_id) +
                                " out of range 0..1023");
    // Re-home `after` on this node so that compare-and-swap arithmetic stays in one node.
    const Parts p = decompose(after);
    last_ = compose(p.timestamp_ms, node_, p.sequence);
}

std::uint64_t Generator::now_ms() const {
    using namespace std::chrono;
    const auto t = clock_ ? clock_() : system_clock::now();
    const std::int64_t ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    // A clock before 2026 (unset RTC) counts as the epoch: ids stay unique, only their
    // embedded time is wrong until the clock is fixed.
    return ms > epoch_unix_ms ? static_cast<std::uint64_t>(ms - epoch_unix_ms) : 0;
}

std::uint64_t Generator::next() {
    const std::uint64_t now = now_ms();
    if (now > max_timestamp) throw std::overflow_error("ids: timestamp space exhausted");
    std::uint64_t prev = last_.load(std::memory_order_relaxed);
    for (;;) {
        std::uint64_t ts = now, seq = 0;
        // prev carries our node bits (or is 0), so comparing whole ids compares (timestamp,
        // sequence). This also keeps 0, the initial value, from ever being issued.
        if ((now << timestamp_shift | std::uint64_t{node_} << node_shift) <= prev) {
            const Parts p = decompose(prev); // same millisecond, or the clock went back
            ts = p.timestamp_ms;
            seq = p.sequence + 1;
            if (seq > max_sequence) { // millisecond used up: borrow the next one
                ++ts;
                seq = 0;
            }
        }
        if (ts > max_timestamp) throw std::overflow_error("ids: timestamp space exhausted");
        const std::uint64_t id = ts << timestamp_shift | std::uint64_t{node_} << node_shift | seq;
        if (last_.compare_exchange_weak(prev, id, std::memory_order_relaxed)) return id;
    }
}

} // namespace strata::ids

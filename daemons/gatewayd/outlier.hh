// Passive outlier ejection (proxy_config.hh: eject_after= eject_ms= eject_max_ms=
// eject_max_percent=): a member whose exchanges fail eject_after times in a row (no
// connection, a reset, a timeout, a 5xx answer) is left out of the pool for eject_ms, twice as
// long on each further ejection up to eject_max_ms; its count of ejections starts over once
// it went eject_max_ms without one. Never more than eject_max_percent of the members are out
// at once (a one-member pool is never ejected at 50%). Pure: the caller gives the time.
#pragma once

#include "proxy_config.hh"

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace strata::gatewayd {

class OutlierDetector {
public:
    using Clock = std::chrono::steady_clock;

    OutlierDetector(const OutlierSpec& spec, std::size_t members);

    // An exchange failed: how long the member is now ejected for, if this ejected it.
    std::optional<std::chrono::milliseconds> failure(std::size_t member, Clock::time_point now);
    void success(std::size_t member);

    bool ejected(std::size_t member, Clock::time_point now) const {
        return now < state_[member].until;
    }
    std::size_t ejected_count(Clock::time_point now) const;
    // When the first member still ejected at `now` comes back, if any is.
    std::optional<Clock::time_point> next_return(Clock::time_point now) const;

private:
    struct State {
        int failures = 0; // in a row
        int times = 0;    // ejections so far (the next lasts eject_ms * 2^times)
        Clock::time_point until{};
    };
    OutlierSpec spec_;
    std::vector<State> state_;
};

} // namespace strata::gatewayd

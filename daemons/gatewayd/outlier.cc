#include "outlier.hh"

#include <algorithm>

namespace strata::gatewayd {

OutlierDetector::OutlierDetector(const OutlierSpec& spec, std::size_t members)
    : spec_(spec), state_(members) {}

std::size_t OutlierDetector::ejected_count(Clock::time_point now) const {
    return static_cast<std::size_t>(std::count_if(state_.begin(), state_.end(),
                                                  [now](const State& s) { return now < s.until; }));
}

std::optional<OutlierDetector::Clock::time_point>
OutlierDetector::next_return(Clock::time_point now) const {
    std::optional<Clock::time_point> first;
    for (const auto& s : state_)
        if (now < s.until && (!first || s.until < *first)) first = s.until;
    return first;
}

void OutlierDetector::success(std::size_t member) {
    state_[member].failures = 0;
}

std::optional<std::chrono::milliseconds> OutlierDetector::failure(std::size_t member,
                                                                  Clock::time_point now) {
    if (spec_.eject_after <= 0) return std::nullopt;
    State& s = state_[member];
    if (now < s.until) return std::nullopt; // already out: answers of earlier requests
    if (++s.failures < spec_.eject_after) return std::nullopt;
    const std::size_t out = ejected_count(now);
    if ((out + 1) * 100 > static_cast<std::size_t>(spec_.max_percent) * state_.size())
        return std::nullopt; // the cap: keeps counting, ejected when others come back
    const auto max = std::chrono::milliseconds(spec_.eject_max_ms);
    // Quiet for eject_max_ms since the last ejection ended: a first offence again.
    if (s.times > 0 && now - s.until >= max) s.times = 0;
    auto span = std::chrono::milliseconds(spec_.eject_ms);
    for (int i = 0; i < s.times && span < max; ++i)
        span *= 2;
    span = std::min(span, max);
    ++s.times;
    s.failures = 0;
    s.until = now + span;
    return span;
}

} // namespace strata::gatewayd

#include "health_check.hh"

#include "http_client/async_client.hh"

namespace strata::gatewayd {

bool HealthState::record(bool ok) {
    if (ok == up_) {
        run_ = 0;
        return false;
    }
    if (++run_ < (up_ ? fall_ : rise_)) return false;
    up_ = ok;
    run_ = 0;
    return true;
}

HealthChecker::HealthChecker(uv_loop_t* loop, const HealthSpec& spec,
                             const std::vector<MemberSpec>& members, Changed changed)
    : spec_(spec), changed_(std::move(changed)), timer_(loop, [this] { tick(); }) {
    http_client::Options o;
    o.max_connections = 1;
    o.connect_timeout = std::chrono::milliseconds(spec.timeout_ms);
    o.timeout = std::chrono::milliseconds(spec.timeout_ms);
    o.max_response_bytes = 64 * 1024;
    o.user_agent = "strata-gatewayd-health-check";
    for (const auto& m : members)
        members_.push_back({std::make_unique<http_client::AsyncClient>(loop, m.target, o),
                            HealthState(spec.rise, spec.fall), false});
    // The first round at once: a member down at startup is found within `fall` intervals.
    timer_.start(std::chrono::milliseconds(0), std::chrono::milliseconds(spec.interval_ms));
}

HealthChecker::~HealthChecker() {
    stopping_ = true;
    timer_.stop();
    // Checks in flight end here, cancelled (their callbacks run from the client's destructor).
    for (auto& m : members_)
        m.client.reset();
}

void HealthChecker::tick() {
    for (std::size_t i = 0; i < members_.size(); ++i) {
        Member& m = members_[i];
        if (m.in_flight) continue; // a check slower than the interval: it is its own verdict
        m.in_flight = true;
        try {
            m.client->get(spec_.path, [this, i](http_client::Result r) {
                if (stopping_) return;
                done(i, !r.error && r.response.status >= 200 && r.response.status < 400);
            });
        } catch (const std::exception& e) {
            m.in_flight = false; // a path the client refuses: counted as a failure
            done(i, false);
        }
    }
}

void HealthChecker::done(std::size_t member, bool ok) {
    Member& m = members_[member];
    m.in_flight = false;
    if (m.state.record(ok)) changed_(member, m.state.up());
}

} // namespace strata::gatewayd

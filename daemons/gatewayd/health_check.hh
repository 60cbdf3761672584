// Active health checks of a pool's members (proxy_config.hh: health=/PATH
// health_interval_ms= health_timeout_ms= rise= fall=): every interval each member gets
// GET PATH over its own transport (unix socket or TCP, on a connection of the checker's
// own, so checks never wait behind proxied requests), answered within the timeout with a
// 2xx or 3xx status or else failed. A member is down after `fall` failures in a row and up
// again after `rise` successes; every member starts up. The timer runs on the daemon's loop
// and everything stops when the checker is destroyed (with its Proxy: a reload builds a new
// one), checks in flight included.
#pragma once

#include "loop_timer.hh"
#include "proxy_config.hh"

#include <functional>
#include <memory>
#include <uv.h>
#include <vector>

namespace strata::http_client {
class AsyncClient;
}

namespace strata::gatewayd {

// Rise/fall counting of one member. Pure.
class HealthState {
public:
    HealthState(int rise, int fall) : rise_(rise), fall_(fall) {}
    bool up() const { return up_; }
    // One check's outcome; true when it changed up().
    bool record(bool ok);

private:
    int rise_, fall_;
    bool up_ = true;
    int run_ = 0; // checks in a row that disagree with up_
};

class HealthChecker {
public:
    // Runs when a member goes down (up false) or comes back.
    using Changed = std::function<void(std::size_t member, bool up)>;

    HealthChecker(uv_loop_t* loop, const HealthSpec& spec, const std::vector<MemberSpec>& members,
                  Changed changed);
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    bool up(std::size_t member) const { return members_[member].state.up(); }

private:
    void tick();
    void done(std::size_t member, bool ok);

    struct Member {
        std::unique_ptr<http_client::AsyncClient> client;
        HealthState state;
        bool in_flight = false;
    };
    HealthSpec spec_;
    Changed changed_;
    std::vector<Member> members_;
    bool stopping_ = false; // set in the destructor: cancelled checks are not counted
    LoopTimer timer_;
};

} // namespace strata::gatewayd

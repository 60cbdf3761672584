// A libuv timer owned like any object: destroying it stops it, and the handle is freed by
// its close callback (libuv closes handles asynchronously).
#pragma once

#include <chrono>
#include <functional>
#include <uv.h>

namespace strata::gatewayd {

class LoopTimer {
public:
    // Throws std::runtime_error if libuv cannot make the timer.
    LoopTimer(uv_loop_t* loop, std::function<void()> fire);
    ~LoopTimer();
    LoopTimer(const LoopTimer&) = delete;
    LoopTimer& operator=(const LoopTimer&) = delete;

    // Fires after `after`, then every `repeat` (0: once). Restarting replaces the schedule.
    void start(std::chrono::milliseconds after, std::chrono::milliseconds repeat = {});
    void stop();

private:
    uv_timer_t* timer_;
    std::function<void()> fire_;
};

} // namespace strata::gatewayd

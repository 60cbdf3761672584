#include "loop_timer.hh"

#include <stdexcept>
#include <string>

namespace strata::gatewayd {

LoopTimer::LoopTimer(uv_loop_t* loop, std::function<void()> fire)
    : timer_(new uv_timer_t), fire_(std::move(fire)) {
    if (int rc = uv_timer_init(loop, timer_); rc != 0) {
        delete timer_;
        throw std::runtime_error(std::string("uv_timer_init: ") + uv_strerror(rc));
    }
    timer_->data = this;
}

LoopTimer::~LoopTimer() {
    uv_timer_stop(timer_);
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void LoopTimer::start(std::chrono::milliseconds after, std::chrono::milliseconds repeat) {
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
            if (auto* self = static_cast<LoopTimer*>(t->data)) self->fire_();
        },
        static_cast<std::uint64_t>(after.count()), static_cast<std::uint64_t>(repeat.count()));
}

void LoopTimer::stop() {
    uv_timer_stop(timer_);
}

} // namespace strata::gatewayd

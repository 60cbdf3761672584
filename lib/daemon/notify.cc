#include "daemon/notify.hh"

#include <fmt/format.h>
#include <string>
#include <systemd/sd-daemon.h>
#include <time.h>

namespace strata::daemon::notify {

namespace {
void send(const std::string& text) {
    sd_notify(0, text.c_str());
}

std::uint64_t monotonic_usec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + ts.tv_nsec / 1000;
}
} // namespace

void ready(std::string_view status) {
    send(status.empty() ? "READY=1" : fmt::format("READY=1\nSTATUS={}", status));
}

// MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload; older ones ignore it.
void reloading() {
    send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
}
void stopping() {
    send("STOPPING=1");
}
void watchdog() {
    send("WATCHDOG=1");
}
void status(std::string_view status) {
    send(fmt::format("STATUS={}", status));
}

std::uint64_t watchdog_interval_ms() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return 0;
    return usec / 2000;
}

} // namespace strata::daemon::notify

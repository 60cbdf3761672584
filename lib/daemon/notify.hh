// sd_notify for the daemon lifecycle. Every call is a no-op when NOTIFY_SOCKET is unset,
// so the same binary runs under systemd, under tools/run and in tests.
#pragma once

#include <cstdint>
#include <string_view>

namespace strata::daemon::notify {

void ready(std::string_view status = {});
void reloading();
void stopping();
void watchdog();
void status(std::string_view status);

// Interval at which to send WATCHDOG=1 (half of WATCHDOG_USEC), or 0 when not asked to.
std::uint64_t watchdog_interval_ms();

} // namespace strata::daemon::notify

// One small logging API for every Strata binary.
// Under systemd the output goes to journald with structured fields (or carries <N> priority
// prefixes when stderr is a plain pipe); on a terminal it is a readable line.
#pragma once

#include <fmt/format.h>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace strata::log {

// Values are syslog priorities so they map 1:1 to journald's PRIORITY=.
enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

enum class Sink {
    automatic, // journal if stderr is the journal stream, <N> prefixes under systemd, else console
    journal,
    prefixed,
    console,
};

// An extra structured field, e.g. {"CONFIG_FILE", "/etc/strata/metad.conf"}.
// Keys follow journald rules (upper case, digits, underscores).
struct Field {
    std::string_view key;
    std::string value;
};

void set_identity(std::string_view identity); // e.g. "strata-metad"
void set_level(Level level);
Level level();
void set_sink(Sink sink);
Sink effective_sink();

std::optional<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);

inline bool enabled(Level l) {
    return static_cast<int>(l) <= static_cast<int>(level());
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::error)) write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::warning)) write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void notice(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::notice)) write(Level::notice, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::info)) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(Level::debug)) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}

} // namespace strata::log

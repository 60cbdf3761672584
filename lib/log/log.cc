#include "log/log.hh"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>
#include <vector>

namespace strata::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Sink> g_sink{Sink::automatic};
std::mutex g_mutex; // serialises identity changes and whole-line writes to stderr
std::string g_identity = "strata";

// systemd sets JOURNAL_STREAM=dev:ino when stderr is connected to journald.
bool stderr_is_journal() {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (!env) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

Sink detect_sink() {
    if (stderr_is_journal()) return Sink::journal;
    if (std::getenv("INVOCATION_ID") && !isatty(STDERR_FILENO)) return Sink::prefixed;
    return Sink::console;
}

void write_journal(Level level, std::string_view message, std::initializer_list<Field> fields) {
    std::vector<std::string> lines;
    lines.reserve(3 + fields.size());
    lines.push_back(fmt::format("MESSAGE={}", message));
    lines.push_back(fmt::format("PRIORITY={}", static_cast<int>(level)));
    {
        std::lock_guard lock(g_mutex);
        lines.push_back(fmt::format("SYSLOG_IDENTIFIER={}", g_identity));
    }
    for (const auto& f : fields)
        lines.push_back(fmt::format("{}={}", f.key, f.value));
    std::vector<iovec> iov;
    iov.reserve(lines.size());
    for (auto& l : lines)
        iov.push_back({l.data(), l.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
        // journald gone (shutdown): fall back to the prefixed form on stderr.
        std::lock_guard lock(g_mutex);
        fmt::print(stderr, "<{}>{}\n", static_cast<int>(level), message);
    }
}

std::string timestamp() {
    using namespace std::chrono;
    auto now = system_clock::now();
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, ms);
}

std::string render_fields(std::initializer_list<Field> fields) {
    std::string out;
    for (const auto& f : fields)
        out += fmt::format(" {}={}", f.key, f.value);
    return out;
}

} // namespace

void set_identity(std::string_view identity) {
    std::lock_guard lock(g_mutex);
    g_identity = identity;
}
void set_level(Level level) {
    g_level.store(level);
}
Level level() {
    return g_level.load(std::memory_order_relaxed);
}
void set_sink(Sink sink) {
    g_sink.store(sink);
}

Sink effective_sink() {
    Sink s = g_sink.load();
    if (s != Sink::automatic) return s;
    static const Sink detected = detect_sink();
    return detected;
}

std::optional<Level> parse_level(std::string_view name) {
    if (name == "error" || name == "err") return Level::error;
    if (name == "warning" || name == "warn") return Level::warning;
    if (name == "notice") return Level::notice;
    if (name == "info") return Level::info;
    if (name == "debug") return Level::debug;
    return std::nullopt;
}

std::string_view level_name(Level level) {
    switch (level) {
    case Level::error:
        return "error";
    case Level::warning:
        return "warning";
    case Level::notice:
        return "notice";
    case Level::info:
        return "info";
    case Level::debug:
        return "debug";
    }
    return "?";
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
    switch (effective_sink()) {
    case Sink::journal:
        write_journal(level, message, fields);
        return;
    case Sink::prefixed: {
        std::string line =
            fmt::format("<{}>{}{}\n", static_cast<int>(level), message, render_fields(fields));
        std::lock_guard lock(g_mutex);
        std::fputs(line.c_str(), stderr);
        return;
    }
    case Sink::automatic:
    case Sink::console: {
        std::lock_guard lock(g_mutex);
        std::string line = fmt::format("{} {}[{}] {}: {}{}\n", timestamp(), g_identity, getpid(),
                                       level_name(level), message, render_fields(fields));
        std::fputs(line.c_str(), stderr);
        return;
    }
    }
}

} // namespace strata::log

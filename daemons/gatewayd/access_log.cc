#include "access_log.hh"

#include "auth/api_key.hh"
#include "log/log.hh"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unistd.h>

namespace strata::gatewayd {

namespace {

// RFC 3339 in UTC with milliseconds: 2026-12-02T21:23:42.123Z.
std::string rfc3339_ms(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
    return buf;
}

double millis(double ms) {
    return std::round(ms * 1000.0) / 1000.0; // microsecond precision is plenty
}

template <class T>
nlohmann::ordered_json or_null(const std::optional<T>& v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

int open_append(const std::string& path) {
    return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

class JournalAccessLog : public AccessLog {
public:
    void write(const AccessRecord& r) override {
        std::string line = format_access_line(r);
        // Bypasses log.level: the access log has its own switch.
        if (log::effective_sink() == log::Sink::journal)
            log::write(log::Level::info, line,
                       {{"REQUEST_ID", r.request_id},
                        {"HTTP_METHOD", r.method},
                        {"HTTP_STATUS", std::to_string(r.status)},
                        {"HTTP_ROUTE", r.route.value_or("")},
                        {"UPSTREAM", r.upstream},
                        {"REMOTE_ADDR", r.remote}});
        else
            log::write(log::Level::info, line);
    }
    const std::string& target() const override { return name_; }

private:
    std::string name_ = "journal";
};

} // namespace

void note_caller(AccessRecord& note, std::optional<std::string_view> bearer, bool verified,
                 bool passed_on, std::optional<std::uint64_t> user, std::string_view caller) {
    note.user.reset();
    if (verified && user) {
        note.caller = "session";
        note.user = std::to_string(*user);
    } else if (verified && caller.starts_with("jwt")) {
        note.caller = "jwt";
        // "jwt; sub=SUB; ...": the subject, already percent-encoded for a header.
        if (auto at = caller.find("sub="); at != caller.npos) {
            auto sub = caller.substr(at + 4);
            note.user = std::string(sub.substr(0, sub.find(';')));
        }
    } else if (passed_on && bearer && bearer->starts_with("sk_")) {
        note.caller = "api_key";
        if (auto key = auth::parse_api_key(*bearer)) note.user = "key:" + std::to_string(key->id);
    } else if (passed_on) {
        note.caller = "unverified_session";
    } else {
        note.caller = "anonymous";
    }
}

void note_upstream(AccessRecord& note, std::string_view pool, std::string_view member,
                   double seconds) {
    note.upstream = pool;
    note.upstream_addr = std::string(member);
    note.upstream_ms = seconds * 1000.0;
}

std::string format_access_line(const AccessRecord& r) {
    using std::chrono::duration;
    nlohmann::ordered_json j;
    j["time"] = rfc3339_ms(r.received);
    j["request_id"] = r.request_id;
    j["remote"] = r.remote;
    j["method"] = r.method;
    j["path"] = r.target;
    j["host"] = r.host;
    j["status"] = r.status;
    j["bytes"] = r.bytes;
    j["duration_ms"] =
        millis(duration<double, std::milli>(std::chrono::steady_clock::now() - r.started).count());
    j["upstream"] = r.upstream;
    j["upstream_addr"] = or_null(r.upstream_addr);
    j["upstream_ms"] = r.upstream_ms ? nlohmann::ordered_json(millis(*r.upstream_ms)) : nullptr;
    j["route"] = or_null(r.route);
    j["caller"] = r.caller;
    j["user"] = or_null(r.user);
    j["user_agent"] = r.user_agent;
    j["referer"] = or_null(r.referer);
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::unique_ptr<AccessLog> AccessLog::open(const std::string& target, std::size_t max_pending,
                                           metrics::Counter* dropped) {
    if (target.empty()) return nullptr;
    if (target == "journal") return std::make_unique<JournalAccessLog>();
    return std::make_unique<FileAccessLog>(target, max_pending, dropped);
}

FileAccessLog::FileAccessLog(std::string path, std::size_t max_pending, metrics::Counter* dropped)
    : path_(std::move(path)), max_pending_(max_pending), dropped_(dropped) {
    if (path_.empty() || path_[0] != '/')
        throw std::runtime_error("access log \"" + path_ + "\": not an absolute path");
    fd_ = open_append(path_);
    if (fd_ < 0) throw std::runtime_error("access log " + path_ + ": " + std::strerror(errno));
    writer_ = std::thread([this] { run(); });
}

FileAccessLog::~FileAccessLog() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    writer_.join();
    ::close(fd_);
}

void FileAccessLog::write(const AccessRecord& r) {
    append_line(format_access_line(r));
}

void FileAccessLog::append_line(std::string_view line) {
    bool wake;
    {
        std::lock_guard lock(mu_);
        if (pending_.size() + line.size() + 1 > max_pending_) {
            drop(1); // the disk does not keep up: memory stays bounded
            return;
        }
        wake = pending_.empty();
        pending_.append(line);
        pending_ += '\n';
    }
    if (wake) cv_.notify_one();
}

void FileAccessLog::reopen() {
    {
        std::lock_guard lock(mu_);
        reopen_ = true;
    }
    cv_.notify_one();
}

void FileAccessLog::drop(std::uint64_t lines) {
    if (dropped_) dropped_->inc(static_cast<double>(lines));
}

void FileAccessLog::run() {
    std::string out;
    bool warned = false; // one warning per failing stretch, not one per line
    for (;;) {
        bool reopen = false, stop = false;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || reopen_ || !pending_.empty(); });
            out.swap(pending_);
            pending_.clear();
            reopen = std::exchange(reopen_, false);
            stop = stop_;
        }
        if (reopen) {
            int fd = open_append(path_);
            if (fd < 0) {
                log::error("access log {}: cannot reopen ({}); still writing the old file", path_,
                           std::strerror(errno));
            } else {
                ::close(fd_);
                fd_ = fd;
                warned = false;
            }
        }
        std::size_t done = 0;
        while (done < out.size()) {
            ssize_t n = ::write(fd_, out.data() + done, out.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                auto lost =
                    std::count(out.begin() + static_cast<std::ptrdiff_t>(done), out.end(), '\n');
                drop(static_cast<std::uint64_t>(lost));
                if (!warned)
                    log::error("access log {}: write failed ({}); lines are dropped", path_,
                               n < 0 ? std::strerror(errno) : "no progress");
                warned = true;
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        if (done == out.size() && !out.empty()) warned = false;
        out.clear();
        if (out.capacity() > max_pending_) out.shrink_to_fit();
        if (stop) {
            std::lock_guard lock(mu_);
            if (pending_.empty()) return;
        }
    }
}

} // namespace strata::gatewayd

// The gateway's access log: one JSON object per answered request (AccessRecord), to the
// journal (the daemon's log) or appended to a file.
//
// A file is written by a thread of its own, so a slow or stuck disk never stalls the loop:
// lines wait in a buffer of at most max_pending bytes, beyond which they are dropped and
// counted (strata_gateway_access_log_dropped_total, lines a failed write lost included).
// reopen() makes the thread open the path again (logrotate renamed the file).
//
// To the journal, MESSAGE is the JSON line and the main fields are structured too
// (REQUEST_ID, HTTP_METHOD, HTTP_STATUS, HTTP_ROUTE, UPSTREAM, REMOTE_ADDR), at priority
// info, whatever log.level says. Without journald the line goes to stderr like any log line.
#pragma once

#include "access_record.hh"
#include "metrics/metrics.hh"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace strata::gatewayd {

// The record as one line of JSON, without the newline. Bytes that are not UTF-8 (a path,
// a User-Agent) become U+FFFD, so every line parses.
std::string format_access_line(const AccessRecord& r);

class AccessLog {
public:
    virtual ~AccessLog() = default;
    virtual void write(const AccessRecord& r) = 0;
    virtual void reopen() {}
    virtual const std::string& target() const = 0;

    // "journal", an absolute file path, or "" (no log: nullptr). Opening a file that
    // cannot be opened throws std::runtime_error.
    static std::unique_ptr<AccessLog> open(const std::string& target, std::size_t max_pending,
                                           metrics::Counter* dropped);
};

// Appends lines to a file from a thread of its own (see above).
class FileAccessLog : public AccessLog {
public:
    FileAccessLog(std::string path, std::size_t max_pending, metrics::Counter* dropped);
    ~FileAccessLog() override; // writes what is pending, then closes
    FileAccessLog(const FileAccessLog&) = delete;
    FileAccessLog& operator=(const FileAccessLog&) = delete;

    void write(const AccessRecord& r) override;
    void append_line(std::string_view line); // the line without its newline
    void reopen() override;
    const std::string& target() const override { return path_; }

private:
    void run();
    void drop(std::uint64_t lines);

    std::string path_;
    std::size_t max_pending_;
    metrics::Counter* dropped_;
    int fd_ = -1; // the writer thread's once started
    std::mutex mu_;
    std::condition_variable cv_;
    std::string pending_;
    bool reopen_ = false, stop_ = false;
    std::thread writer_;
};

} // namespace strata::gatewayd

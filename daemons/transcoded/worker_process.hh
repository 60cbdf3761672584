// One job in one child process, watched from the daemon's loop: a crashing or hung GStreamer
// pipeline takes its process down, never the daemon. The child gets the job as JSON on its
// standard input and reports on its standard output, one JSON object per line:
//   {"progress": 42.5, "stage": "encoding"}      (any number of times)
//   {"result": {...}}                             (success: what it produced)
//   {"error": "why", "permanent": true}           (failure; permanent: retrying cannot help)
// Its standard error is kept (the last 4 KiB) to explain a crash. The child runs in its own
// process group (everything it starts is killed with it), at the configured niceness and
// with RLIMIT_AS as its memory limit; it is killed (SIGKILL) after job_timeout, or when it
// reports no progress for stall_timeout. The first start() ignores SIGPIPE for the
// process (a child that exits without reading its job must not kill the daemon).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <uv.h>
#include <vector>

namespace strata::transcoded {

struct WorkerLimits {
    std::vector<std::string> command; // argv; command[0] is run as is (a path)
    // Run instead of command[0] when set (argv stays command): "/proc/self/exe" keeps
    // starting the daemon's own binary after a package upgrade replaced the file.
    std::string executable;
    int nice = 10;                  // added to the daemon's niceness
    std::uint64_t memory_bytes = 0; // RLIMIT_AS of the child; 0: none
    std::chrono::milliseconds job_timeout = std::chrono::hours(1);
    std::chrono::milliseconds stall_timeout = std::chrono::minutes(2);
};

struct WorkerProgress {
    double percent = 0;
    std::string stage;
};

struct WorkerOutcome {
    enum class Kind { done, failed, timed_out, stalled, crashed, cancelled };
    Kind kind = Kind::failed;
    bool permanent = false; // failed: the worker said retrying cannot help
    std::string reason;     // empty when done
    nlohmann::json result;  // done: the worker's result
    double cpu_seconds = 0; // user + system time of the worker (its own threads)
    std::uint64_t max_rss_bytes = 0;
};
const char* outcome_name(WorkerOutcome::Kind k);

class WorkerProcess {
public:
    using OnProgress = std::function<void(const WorkerProgress&)>;
    using OnDone = std::function<void(WorkerOutcome)>;
    // Starts the child; `done` runs exactly once, from the loop, after the child is gone
    // (also when it cannot start: kind crashed with the reason).
    static std::shared_ptr<WorkerProcess> start(uv_loop_t* loop, const WorkerLimits& limits,
                                                const std::string& job_json, OnProgress progress,
                                                OnDone done);
    virtual ~WorkerProcess() = default;
    // Kills the child (and its group); `done` gets kind cancelled.
    virtual void cancel() = 0;
    virtual int pid() const = 0;
};

} // namespace strata::transcoded

// Runs the queue's jobs on the daemon's loop: while fewer than workers.count run, it leases
// the most urgent job and starts a worker process for it (worker_process.hh), forwards the
// worker's progress to metad (at most every 2 s a job) and extends the job's lease with it,
// then settles the outcome:
//   done                     metad records the renditions (the file becomes ready and metad
//                            emits file.ready), then the job is acked. metad answering 404
//                            (the file was deleted meanwhile): the job is dead-lettered.
//   failed, permanent        (bad input) metad marks the file failed with the reason, the job
//                            is dead-lettered with it at once: no retry can help.
//   any other failure        (transient error, crash, timeout, stall, metad unreachable) the
//                            job is retried with backoff; after its last attempt it is
//                            dead-lettered and metad marks the file failed.
//   cancelled                (DELETE /v1/jobs/ID of a running job) the worker is killed, the
//                            job removed, the file marked failed "cancelled by an operator".
// Calls to metad are tried 4 times (1, 2, 4 s apart) while it is unreachable; the file is
// marked failed before its job is set aside. Leases are extended every 30 s while a job is
// here; a job of a crashed daemon runs again once its lease expires.
#pragma once

#include "job_queue.hh"
#include "settings.hh"
#include "worker_process.hh"

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <uv.h>
#include <vector>

namespace strata::http_client {
class AsyncClient;
}

namespace strata::transcoded {

struct RunningJob {
    JobId id;
    std::uint64_t file_id = 0;
    int pid = 0;
    WorkerProgress progress;
    std::chrono::steady_clock::time_point started;
};

// What the last jobs took (GET /v1/jobs): for the operator and the benchmark.
struct FinishedJob {
    JobId id;
    std::uint64_t file_id = 0;
    std::string outcome; // "done", "failed", "crashed", ...
    std::string reason;
    double wall_seconds = 0, cpu_seconds = 0;
    std::uint64_t max_rss_bytes = 0;
};

class Scheduler {
public:
    // worker_command: argv of a worker (the daemon's own binary with --worker), run from
    // worker_executable when set ("/proc/self/exe": survives a package upgrade);
    // work_root: where workers keep their files (STATE/work), emptied here at start.
    Scheduler(uv_loop_t* loop, JobQueue& jobs, Settings settings,
              std::vector<std::string> worker_command, std::filesystem::path work_root,
              unsigned max_attempts, std::string worker_executable = {});
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // A reload: new jobs use the new settings; running ones keep theirs (metad.socket
    // needs a restart).
    void update(Settings settings);
    // A job was submitted: look for work now. Thread-safe (blocking routes call it).
    void wake();
    enum class CancelResult { cancelling, too_late, not_here };
    // Kills the worker of a running job (loop thread only). too_late: the worker is done
    // and its result is being recorded; not_here: no such job runs here.
    CancelResult cancel(const JobId& id);
    std::vector<RunningJob> running() const;
    std::vector<FinishedJob> finished() const; // newest first, at most 50
    // Kills every worker and stops the timers (their jobs run again after a backoff).
    void stop();

private:
    struct Slot;
    void on_tick();
    void fill();
    void start(LeasedJob job);
    std::filesystem::path work_dir(const Slot& s) const;
    void progressed(Slot& s, const WorkerProgress& p);
    void report_progress(Slot& s);
    void settle(std::uint64_t slot, WorkerOutcome outcome);
    void record_result(Slot& s);
    void fail_file(Slot& s, const std::string& reason, const char* outcome, bool cancelled);
    void record(Slot& s, nlohmann::json body, std::function<void(int status, std::string)> then,
                int tries = 1);
    void send(std::uint64_t slot, nlohmann::json body, std::function<void(int, std::string)> then,
              int tries, int attempt);
    void later(std::chrono::milliseconds wait, std::function<void()> f);
    void finish(Slot& s, const char* outcome, const std::string& reason);
    // Runs a queue operation; an exception (LMDB) is logged and gives false.
    template <class F>
    bool guarded(const char* what, F&& f);

    uv_loop_t* loop_;
    JobQueue& jobs_;
    Settings settings_;
    std::vector<std::string> command_;
    std::string executable_;
    std::filesystem::path work_root_;
    unsigned max_attempts_;
    std::unique_ptr<http_client::AsyncClient> metad_;
    std::map<std::uint64_t, std::unique_ptr<Slot>> slots_; // by slot number
    std::uint64_t next_slot_ = 1;
    std::vector<FinishedJob> finished_;
    uv_timer_t* tick_ = nullptr;
    std::mutex wake_mu_; // guards wake_ against stop() while pool threads call wake()
    uv_async_t* wake_ = nullptr;
    bool stopped_ = false;
};

} // namespace strata::transcoded

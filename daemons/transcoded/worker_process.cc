#include "worker_process.hh"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace strata::transcoded {

const char* outcome_name(WorkerOutcome::Kind k) {
    switch (k) {
    case WorkerOutcome::Kind::done:
        return "done";
    case WorkerOutcome::Kind::failed:
        return "failed";
    case WorkerOutcome::Kind::timed_out:
        return "timed_out";
    case WorkerOutcome::Kind::stalled:
        return "stalled";
    case WorkerOutcome::Kind::crashed:
        return "crashed";
    case WorkerOutcome::Kind::cancelled:
        return "cancelled";
    }
    return "failed";
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxLine = 16 << 20; // a longer report line is a broken worker
constexpr std::size_t kStderrTail = 4096;  // kept to explain a crash

// A pipe whose ends are closed with the object.
struct Pipe {
    int r = -1, w = -1;
    bool open() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return false;
        r = fds[0];
        w = fds[1];
        return true;
    }
    static void close_fd(int& fd) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    ~Pipe() {
        close_fd(r);
        close_fd(w);
    }
};

void nonblocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

class Process final : public WorkerProcess, public std::enable_shared_from_this<Process> {
public:
    Process(uv_loop_t* loop, const WorkerLimits& limits, OnProgress progress, OnDone done)
        : loop_(loop), limits_(limits), progress_(std::move(progress)), done_(std::move(done)) {}

    // false: could not start (why_ says it).
    bool spawn(const std::string& job) {
        if (limits_.command.empty()) return fail_start("no worker command");
        Pipe in, out, err, exec_error;
        if (!in.open() || !out.open() || !err.open() || !exec_error.open())
            return fail_start(std::string("pipe: ") + std::strerror(errno));
        // Everything the child needs, made before fork (no allocation after it).
        std::vector<char*> argv;
        for (auto& a : limits_.command)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        const char* program =
            limits_.executable.empty() ? limits_.command[0].c_str() : limits_.executable.c_str();
        const int nice_by = limits_.nice;
        const rlimit as{limits_.memory_bytes, limits_.memory_bytes};
        const bool limit_memory = limits_.memory_bytes > 0;
        const pid_t parent = ::getpid();
        pid_t pid = ::fork();
        if (pid < 0) return fail_start(std::string("fork: ") + std::strerror(errno));
        if (pid == 0) {
            // The child: only async-signal-safe calls until exec.
            ::setpgid(0, 0);
            // The daemon gone (even kill -9), its workers go too: nobody would read them.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            ::dup2(in.r, 0);
            ::dup2(out.w, 1);
            ::dup2(err.w, 2);
            ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); // exec_error.w closes on exec
            ::fcntl(exec_error.w, F_SETFD, FD_CLOEXEC);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::signal(SIGPIPE, SIG_DFL);
            if (nice_by != 0) {
                errno = 0;
                (void)::nice(nice_by);
            }
            if (limit_memory) ::setrlimit(RLIMIT_AS, &as);
            ::execv(program, argv.data());
            int e = errno;
            (void)!::write(exec_error.w, &e, sizeof e);
            ::_exit(127);
        }
        pid_ = pid;
        ::setpgid(pid, pid); // also from here: no race with the kill of the group
        Pipe::close_fd(in.r);
        Pipe::close_fd(out.w);
        Pipe::close_fd(err.w);
        Pipe::close_fd(exec_error.w);
        int e = 0;
        ssize_t n;
        do
            n = ::read(exec_error.r, &e, sizeof e); // EOF at exec: it started
        while (n < 0 && errno == EINTR);
        if (n == static_cast<ssize_t>(sizeof e)) {
            ::waitpid(pid, nullptr, 0);
            pid_ = -1;
            return fail_start("cannot run " + limits_.command[0] + ": " + std::strerror(e));
        }
        pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (pidfd_ < 0) {
            ::kill(-pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            pid_ = -1;
            return fail_start(std::string("pidfd_open: ") + std::strerror(errno));
        }
        stdin_ = in.w;
        stdout_ = out.r;
        stderr_ = err.r;
        in.w = out.r = err.r = -1;
        nonblocking(stdin_);
        nonblocking(stdout_);
        nonblocking(stderr_);
        to_child_ = job;
        started_ = last_progress_ = Clock::now();
        uv_poll_init(loop_, &in_poll_, stdin_);
        uv_poll_init(loop_, &out_poll_, stdout_);
        uv_poll_init(loop_, &err_poll_, stderr_);
        uv_poll_init(loop_, &pid_poll_, pidfd_);
        uv_timer_init(loop_, &timer_);
        for (uv_handle_t* h : handles())
            h->data = this;
        open_ = 5;
        self_ = shared_from_this();
        write_stdin();
        uv_poll_start(&out_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
            static_cast<Process*>(h->data)->read_stdout();
        });
        uv_poll_start(&err_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
            static_cast<Process*>(h->data)->read_stderr();
        });
        uv_poll_start(&pid_poll_, UV_READABLE,
                      [](uv_poll_t* h, int, int) { static_cast<Process*>(h->data)->exited(); });
        arm_watchdog();
        return true;
    }

    void cancel() override { kill_as(WorkerOutcome::Kind::cancelled, "cancelled"); }
    int pid() const override { return pid_; }

    // A start that failed: `done` still runs from the loop, never from start().
    bool fail_start(std::string why) {
        outcome_.kind = WorkerOutcome::Kind::crashed;
        outcome_.reason = std::move(why);
        return false;
    }
    WorkerOutcome take_outcome() { return std::move(outcome_); }
    OnDone take_done() { return std::move(done_); }

private:
    std::vector<uv_handle_t*> handles() {
        return {
            reinterpret_cast<uv_handle_t*>(&in_poll_), reinterpret_cast<uv_handle_t*>(&out_poll_),
            reinterpret_cast<uv_handle_t*>(&err_poll_), reinterpret_cast<uv_handle_t*>(&pid_poll_),
            reinterpret_cast<uv_handle_t*>(&timer_)};
    }

    void write_stdin() {
        while (!to_child_.empty()) {
            ssize_t n = ::write(stdin_, to_child_.data(), to_child_.size());
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                uv_poll_start(&in_poll_, UV_WRITABLE, [](uv_poll_t* h, int, int) {
                    static_cast<Process*>(h->data)->write_stdin();
                });
                return;
            }
            if (n <= 0) break; // the child closed its stdin: its business
            to_child_.erase(0, static_cast<std::size_t>(n));
        }
        // The job is all there: EOF. The handle goes first and the fd in its close callback:
        // libuv forgets an fd only when its handle closes, and closing a handle whose fd
        // number was closed (and reused, e.g. by another worker's pidfd) would unwatch
        // that other fd.
        close_handle(reinterpret_cast<uv_handle_t*>(&in_poll_));
    }

    // Closes one of the handles (once); the fds go when every handle has closed, and then
    // `done` runs.
    void close_handle(uv_handle_t* h) {
        if (uv_is_closing(h)) return;
        uv_close(h, [](uv_handle_t* h) {
            auto* self = static_cast<Process*>(h->data);
            if (h == reinterpret_cast<uv_handle_t*>(&self->in_poll_)) Pipe::close_fd(self->stdin_);
            if (--self->open_ > 0) return;
            for (int* fd : {&self->stdin_, &self->stdout_, &self->stderr_, &self->pidfd_})
                Pipe::close_fd(*fd);
            auto keep = std::move(self->self_); // the last handle: finish() ran
            auto done = std::move(self->done_);
            if (done) done(std::move(self->outcome_));
        });
    }

    void read_stdout() {
        char buf[16384];
        for (;;) {
            ssize_t n = ::read(stdout_, buf, sizeof buf);
            if (n > 0) {
                line_.append(buf, static_cast<std::size_t>(n));
                std::size_t nl;
                while ((nl = line_.find('\n')) != std::string::npos) {
                    report(std::string_view(line_).substr(0, nl));
                    line_.erase(0, nl + 1);
                }
                if (line_.size() > kMaxLine)
                    return kill_as(WorkerOutcome::Kind::crashed, "a report line over 16 MiB");
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            uv_poll_stop(&out_poll_); // EOF
            return;
        }
    }

    void read_stderr() {
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(stderr_, buf, sizeof buf);
            if (n > 0) {
                err_tail_.append(buf, static_cast<std::size_t>(n));
                if (err_tail_.size() > kStderrTail)
                    err_tail_.erase(0, err_tail_.size() - kStderrTail);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            uv_poll_stop(&err_poll_);
            return;
        }
    }

    void report(std::string_view line) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object()) return; // not a report (a library printing to stdout)
        if (auto p = j.find("progress"); p != j.end() && p->is_number()) {
            last_progress_ = Clock::now();
            arm_watchdog();
            WorkerProgress wp{p->get<double>(), j.value("stage", std::string())};
            if (progress_) progress_(wp);
        } else if (auto r = j.find("result"); r != j.end() && r->is_object()) {
            result_ = *r;
            has_result_ = true;
        } else if (auto e = j.find("error"); e != j.end() && e->is_string()) {
            error_ = e->get<std::string>();
            permanent_ = j.value("permanent", false);
            has_error_ = true;
        }
    }

    void arm_watchdog() {
        if (finished_) return;
        auto now = Clock::now();
        auto deadline =
            std::min(started_ + limits_.job_timeout, last_progress_ + limits_.stall_timeout);
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        uv_timer_start(
            &timer_, [](uv_timer_t* t) { static_cast<Process*>(t->data)->watchdog(); },
            static_cast<std::uint64_t>(std::max<std::int64_t>(wait.count(), 0)) + 1, 0);
    }

    void watchdog() {
        auto now = Clock::now();
        if (now >= started_ + limits_.job_timeout)
            return kill_as(WorkerOutcome::Kind::timed_out,
                           "still running after " +
                               std::to_string(limits_.job_timeout.count() / 1000) + " s");
        if (now >= last_progress_ + limits_.stall_timeout)
            return kill_as(WorkerOutcome::Kind::stalled,
                           "no progress for " +
                               std::to_string(limits_.stall_timeout.count() / 1000) + " s");
        arm_watchdog();
    }

    // Kills the group; the exit (pidfd) then finishes with this kind.
    void kill_as(WorkerOutcome::Kind kind, std::string why) {
        if (finished_ || killed_) return;
        killed_ = true;
        outcome_.kind = kind;
        outcome_.reason = std::move(why);
        if (pid_ > 0) ::kill(-pid_, SIGKILL);
    }

    void exited() {
        int status = 0;
        rusage usage{};
        // The group first, while the leader (a zombie until reaped) still holds its pid:
        // what the worker started dies with it, and no reused pid is hit.
        ::kill(-pid_, SIGKILL);
        pid_t got = ::wait4(pid_, &status, WNOHANG, &usage);
        if (got == 0) return;     // not yet
        if (got < 0) status = -1; // reaped elsewhere (ECHILD): gone, status unknown
        auto seconds = [](const timeval& t) { return double(t.tv_sec) + t.tv_usec / 1e6; };
        outcome_.cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
        outcome_.max_rss_bytes = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
        read_stdout(); // what it wrote before leaving
        if (!line_.empty()) report(line_);
        read_stderr();
        if (!killed_) {
            if (got > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && has_result_) {
                outcome_.kind = WorkerOutcome::Kind::done;
                outcome_.result = std::move(result_);
            } else if (has_error_) {
                outcome_.kind = WorkerOutcome::Kind::failed;
                outcome_.permanent = permanent_;
                outcome_.reason = error_;
            } else {
                outcome_.kind = WorkerOutcome::Kind::crashed;
                const char* sig = WIFSIGNALED(status) ? ::sigabbrev_np(WTERMSIG(status)) : nullptr;
                outcome_.reason = got < 0 ? std::string("ended, its exit status unknown")
                                  : WIFSIGNALED(status)
                                      ? std::string("killed by signal ") +
                                            (sig ? sig : std::to_string(WTERMSIG(status)).c_str())
                                      : "exited with status " +
                                            std::to_string(WEXITSTATUS(status)) +
                                            (WEXITSTATUS(status) == 0 ? " without a result" : "");
                auto tail = err_tail_;
                while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' '))
                    tail.pop_back();
                if (auto nl = tail.rfind('\n'); nl != std::string::npos) tail = tail.substr(nl + 1);
                if (!tail.empty()) outcome_.reason += ": " + tail;
            }
        }
        pid_ = -1;
        finish();
    }

    void finish() {
        finished_ = true;
        for (uv_handle_t* h : handles())
            close_handle(h);
    }

    uv_loop_t* loop_;
    WorkerLimits limits_;
    OnProgress progress_;
    OnDone done_;
    int pid_ = -1, pidfd_ = -1, stdin_ = -1, stdout_ = -1, stderr_ = -1;
    uv_poll_t in_poll_{}, out_poll_{}, err_poll_{}, pid_poll_{};
    uv_timer_t timer_{};
    int open_ = 0;
    std::string to_child_, line_, err_tail_;
    Clock::time_point started_, last_progress_;
    nlohmann::json result_;
    bool has_result_ = false, has_error_ = false, permanent_ = false;
    std::string error_;
    bool killed_ = false, finished_ = false;
    WorkerOutcome outcome_;
    std::shared_ptr<Process> self_; // until the handles are closed
};

} // namespace

std::shared_ptr<WorkerProcess> WorkerProcess::start(uv_loop_t* loop, const WorkerLimits& limits,
                                                    const std::string& job_json,
                                                    OnProgress progress, OnDone done) {
    // A worker that exits before reading its job makes the write to its stdin fail: that
    // must be EPIPE, not a SIGPIPE that kills the daemon. Children get SIG_DFL back.
    static const bool pipe_ignored = ::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
    (void)pipe_ignored;
    auto p = std::make_shared<Process>(loop, limits, std::move(progress), std::move(done));
    if (p->spawn(job_json)) return p;
    // Could not start: told from the loop, as every other outcome.
    struct Later {
        uv_timer_t timer;
        OnDone done;
        WorkerOutcome outcome;
    };
    auto* later = new Later{{}, p->take_done(), p->take_outcome()};
    uv_timer_init(loop, &later->timer);
    later->timer.data = later;
    uv_timer_start(
        &later->timer,
        [](uv_timer_t* t) {
            uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) {
                auto* l = static_cast<Later*>(h->data);
                if (l->done) l->done(std::move(l->outcome));
                delete l;
            });
        },
        0, 0);
    return p;
}

} // namespace strata::transcoded

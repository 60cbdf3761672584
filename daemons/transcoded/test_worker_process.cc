// WorkerProcess against real child processes (python3 scripts standing in for the GStreamer
// worker): reports, failures, crashes, hangs, timeouts, memory limits, niceness, cancel.
#include "worker_process.hh"

#include <cerrno>
#include <criterion/criterion.h>
#include <csignal>
#include <fstream>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace strata::transcoded;
using namespace std::chrono_literals;

namespace {

struct Run {
    std::optional<WorkerOutcome> outcome;
    std::vector<WorkerProgress> progress;
};

WorkerLimits python(const std::string& script) {
    WorkerLimits l;
    l.command = {"/usr/bin/python3", "-c", script};
    l.nice = 5;
    l.job_timeout = 20s;
    l.stall_timeout = 20s;
    return l;
}

// Runs one worker to its end on a private loop (bounded: the limits kill it).
Run run(const WorkerLimits& limits, const std::string& job = R"({"file_id":1})",
        bool cancel_at_once = false) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Run r;
    auto w = WorkerProcess::start(
        &loop, limits, job, [&](const WorkerProgress& p) { r.progress.push_back(p); },
        [&](WorkerOutcome o) { r.outcome = std::move(o); });
    if (cancel_at_once) w->cancel();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    cr_assert(r.outcome.has_value(), "done never ran");
    return r;
}

bool alive(pid_t pid) {
    return ::kill(pid, 0) == 0 || errno != ESRCH;
}

} // namespace

Test(worker, reports_progress_and_a_result_with_its_limits_applied) {
    auto l = python(R"(
import json, os, resource, sys
job = json.load(sys.stdin)
print("a library's chatter, not a report", flush=True)
print(json.dumps({"progress": 50, "stage": "decoding"}), flush=True)
print(json.dumps({"progress": 100, "stage": "encoding"}), flush=True)
print(json.dumps({"result": {"job": job, "nice": os.nice(0),
                             "as": resource.getrlimit(resource.RLIMIT_AS)[0],
                             "own_group": os.getpgid(0) == os.getpid()}}))
)");
    l.memory_bytes = 512ull << 20;
    int before = ::nice(0);
    auto r = run(l, R"({"file_id":7})");
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::done, "%s: %s", outcome_name(r.outcome->kind),
              r.outcome->reason.c_str());
    const auto& res = r.outcome->result;
    cr_assert_eq(res["job"]["file_id"], 7, "the job came on stdin");
    cr_assert_eq(res["nice"].get<int>(), before + 5);
    cr_assert_eq(res["as"].get<std::uint64_t>(), 512ull << 20);
    cr_assert(res["own_group"].get<bool>());
    cr_assert_eq(r.progress.size(), 2u);
    cr_assert(r.progress[0].percent == 50 && r.progress[0].stage == "decoding");
}

Test(worker, a_reported_failure_keeps_its_reason_and_permanence) {
    auto r = run(python(R"(
import json
print(json.dumps({"error": "not a video: text/plain", "permanent": True}))
raise SystemExit(1)
)"));
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::failed);
    cr_assert(r.outcome->permanent);
    cr_assert_eq(r.outcome->reason, "not a video: text/plain");
}

Test(worker, a_crash_is_named_with_the_last_line_of_stderr) {
    auto r = run(python(R"(
import os, signal, sys
sys.stderr.write("decoder: corrupt macroblock at 3:12\n"); sys.stderr.flush()
os.kill(os.getpid(), signal.SIGSEGV)
)"));
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::crashed);
    cr_assert_eq(r.outcome->reason, "killed by signal SEGV: decoder: corrupt macroblock at 3:12");
    auto quiet = run(python("pass"));
    cr_assert(quiet.outcome->kind == WorkerOutcome::Kind::crashed);
    cr_assert_eq(quiet.outcome->reason, "exited with status 0 without a result");
}

Test(worker, no_progress_for_the_stall_timeout_kills_it_and_what_it_started) {
    char tmpl[] = "/tmp/strata-worker-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    auto l = python(R"(
import json, subprocess, sys, time
child = subprocess.Popen(["sleep", "60"])
open(sys.argv[1], "w").write(str(child.pid))
print(json.dumps({"progress": 1, "stage": "stuck"}), flush=True)
time.sleep(60)
)");
    l.command.push_back(dir + "/pid");
    l.stall_timeout = 400ms;
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(l);
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::stalled, "%s", outcome_name(r.outcome->kind));
    cr_assert_lt(std::chrono::steady_clock::now() - t0, 10s);
    pid_t grandchild = 0;
    std::ifstream(dir + "/pid") >> grandchild;
    cr_assert_gt(grandchild, 0);
    for (int i = 0; i < 100 && alive(grandchild); ++i)
        usleep(20000); // killed; init reaps it
    cr_assert_not(alive(grandchild), "the worker's own child was killed with it");
    std::remove((dir + "/pid").c_str());
    rmdir(dir.c_str());
}

Test(worker, progress_does_not_outlive_the_job_timeout) {
    auto l = python(R"(
import json, time
while True:
    print(json.dumps({"progress": 1}), flush=True)
    time.sleep(0.05)
)");
    l.stall_timeout = 5s;
    l.job_timeout = 600ms;
    auto r = run(l);
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::timed_out, "%s",
              outcome_name(r.outcome->kind));
    cr_assert_gt(r.progress.size(), 2u);
}

Test(worker, the_memory_limit_stops_a_bomb) {
    auto l = python("x = bytearray(4 << 30)\nprint('{\"result\": {}}')\n");
    l.memory_bytes = 256ull << 20;
    auto r = run(l);
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::crashed);
    cr_assert(r.outcome->reason.find("MemoryError") != std::string::npos, "%s",
              r.outcome->reason.c_str());
}

Test(worker, cannot_start_and_cancel) {
    WorkerLimits missing;
    missing.command = {"/nonexistent/strata-worker"};
    auto r = run(missing);
    cr_assert(r.outcome->kind == WorkerOutcome::Kind::crashed);
    cr_assert_eq(r.outcome->reason,
                 "cannot run /nonexistent/strata-worker: No such file or directory");
    auto c = run(python("import time\ntime.sleep(60)\n"), "{}", true);
    cr_assert(c.outcome->kind == WorkerOutcome::Kind::cancelled);
}

// Workers that end while others run: a finished worker's closed fds are reused by the next
// ones (pipes, pidfds), which must still be watched. An fd closed before its libuv handle
// once unwatched another worker's pidfd, and that worker's end went unnoticed. Half of them
// exit without reading their job: the write to their stdin gets EPIPE (no SIGPIPE).
Test(worker, many_at_once_all_end) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    constexpr int kWorkers = 12;
    std::vector<std::optional<WorkerOutcome>> outcomes(kWorkers);
    std::vector<std::shared_ptr<WorkerProcess>> workers;
    for (int i = 0; i < kWorkers; ++i) {
        // Half end at once without reading their job; the others take a little while.
        auto l = python(i % 2 ? "import sys, time; time.sleep(0.3); sys.stdin.read(); "
                                "print('{\"result\": {}}')"
                              : "print('{\"error\": \"bad\", \"permanent\": true}')");
        l.stall_timeout = 10s;
        workers.push_back(WorkerProcess::start(
            &loop, l, std::string(100000, ' ') + "{}", [](const WorkerProgress&) {},
            [&outcomes, i](WorkerOutcome o) { outcomes[i] = std::move(o); }));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    for (int i = 0; i < kWorkers; ++i) {
        cr_assert(outcomes[i].has_value(), "worker %d never ended", i);
        cr_expect(
            outcomes[i]->kind == (i % 2 ? WorkerOutcome::Kind::done : WorkerOutcome::Kind::failed),
            "worker %d: %s %s", i, outcome_name(outcomes[i]->kind), outcomes[i]->reason.c_str());
    }
}

// strata-transcoded: the video and image processing queue (strata-daemon(8)). The daemon
// keeps the durable job queue and its API (job_routes.hh) and runs each job in a worker
// process (scheduler.hh); `strata-transcoded --worker` is that process (worker_main.hh).
#include "daemon/runtime.hh"
#include "gst_elements.hh"
#include "job_queue.hh"
#include "job_routes.hh"
#include "lmdb/env.hh"
#include "scheduler.hh"
#include "settings.hh"
#include "worker_main.hh"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>

namespace {

using namespace strata;

std::unique_ptr<lmdb::Env> g_env;
std::unique_ptr<transcoded::JobQueue> g_jobs;
std::unique_ptr<transcoded::Scheduler> g_scheduler;

// Retries of a failed job: 30 s, 1 min, 2 min... up to an hour, 5 attempts in all (by
// default). A crashed daemon's jobs run again once their 10-minute lease ends.
queue::Options queue_options(const transcoded::Settings& s) {
    queue::Options o;
    o.visibility_timeout = std::chrono::minutes(10);
    o.max_attempts = s.max_attempts;
    o.backoff_base = s.retry_backoff;
    o.backoff_max = std::chrono::hours(1);
    o.jitter = 0.2;
    o.idempotency_retention = std::chrono::hours(24 * 7);
    return o;
}

void add_gauges(metrics::Registry& m) {
    auto total = [](auto field) {
        return [field] {
            double n = 0;
            for (const auto& c : g_jobs->counts())
                n += double(c.*field);
            return n;
        };
    };
    m.gauge_callback("strata_transcoded_jobs_ready", "Jobs waiting to run now",
                     total(&queue::Counts::ready));
    m.gauge_callback("strata_transcoded_jobs_delayed", "Jobs waiting for a retry (backoff)",
                     total(&queue::Counts::delayed));
    m.gauge_callback("strata_transcoded_jobs_running", "Jobs leased by a worker",
                     total(&queue::Counts::leased));
    m.gauge_callback("strata_transcoded_jobs_failed",
                     "Jobs dead-lettered (stratactl transcode retry ID)",
                     total(&queue::Counts::dead));
    m.gauge_callback("strata_transcoded_workers", "Worker processes running now",
                     [] { return double(g_scheduler ? g_scheduler->running().size() : 0); });
}

void start(daemon::Runtime& rt) {
    // GStreamer's plugin registry cache: in the state directory, which the daemon can write
    // (its home under systemd is not), so starts after the first do not rescan plugins.
    // The workers inherit it.
    setenv("GST_REGISTRY_1_0", (rt.state_dir()->path() + "/gst-registry.bin").c_str(), 0);
    if (auto missing = transcoded::missing_elements(transcoded::needed_elements());
        !missing.empty())
        throw std::runtime_error(transcoded::describe_missing(missing));
    auto settings = transcoded::settings_of(rt.config());
    std::filesystem::path state = rt.state_dir()->path();
    auto options = queue_options(settings);
    g_env = std::make_unique<lmdb::Env>(state / "jobs");
    g_jobs = std::make_unique<transcoded::JobQueue>(*g_env, options);
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot find the daemon's own binary: " + ec.message());
    g_scheduler = std::make_unique<transcoded::Scheduler>(
        rt.loop(), *g_jobs, std::move(settings),
        std::vector<std::string>{self.string(), "--worker"}, state / "work", options.max_attempts,
        "/proc/self/exe");
    transcoded::add_job_routes(rt.control_router(), *g_jobs, g_scheduler.get());
    add_gauges(rt.metrics());
}

} // namespace

int main(int argc, char** argv) {
    // The worker and the one-file mode run no daemon: no config, sockets or state.
    if (argc == 2 && std::strcmp(argv[1], "--worker") == 0)
        return strata::transcoded::run_worker(std::cin, std::cout);
    if (argc >= 2 && std::strcmp(argv[1], "--process") == 0) {
        if (argc != 4) {
            std::cerr << "usage: strata-transcoded --process FILE OUTDIR\n";
            return 2;
        }
        return strata::transcoded::run_process(argv[2], argv[3], std::cout, std::cerr);
    }
    static const strata::daemon::Spec spec{
        .name = "transcoded",
        .summary = "Strata video and image processing queue.\n"
                   "Or: strata-transcoded --process FILE OUTDIR   one local file through the "
                   "pipelines\n"
                   "    (default settings, nothing stored; see strata-transcoded(8)).",
        .state_dir = "/var/lib/strata/transcode",
        .extend_schema = strata::transcoded::extend_schema,
        .check = [](const strata::config::Config& c) { (void)strata::transcoded::settings_of(c); },
        .start = start,
        .reload =
            [](strata::daemon::Runtime&, const strata::config::Config& c) {
                g_scheduler->update(strata::transcoded::settings_of(c));
            },
        // Workers are killed when the stop begins: their jobs run again later (scheduler.hh).
        .stopping =
            [](strata::daemon::Runtime&) {
                if (g_scheduler) g_scheduler->stop();
            },
        // Also after a start that failed (no stop began): before libuv closes what is left.
        .stop =
            [](strata::daemon::Runtime&) {
                if (g_scheduler) g_scheduler->stop();
            },
    };
    return strata::daemon::main(argc, argv, spec);
}

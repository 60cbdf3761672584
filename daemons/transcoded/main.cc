// strata-transcoded: video and image processing queue. This release checks the GStreamer
// elements its pipelines need (gst_elements.hh) and keeps the durable job queue and its
// API (job_routes.hh); the workers that run the jobs are not built yet, so jobs wait.
#include "daemon/runtime.hh"
#include "gst_elements.hh"
#include "job_queue.hh"
#include "job_routes.hh"
#include "lmdb/env.hh"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace {

using namespace strata;

std::unique_ptr<lmdb::Env> g_env;
std::unique_ptr<transcoded::JobQueue> g_jobs;

// Retries of a failed job: 30 s, 1 min, 2 min... up to an hour, 5 attempts in all.
queue::Options queue_options() {
    queue::Options o;
    o.visibility_timeout = std::chrono::minutes(10);
    o.max_attempts = 5;
    o.backoff_base = std::chrono::seconds(30);
    o.backoff_max = std::chrono::hours(1);
    o.jitter = 0.2;
    o.idempotency_retention = std::chrono::hours(24 * 7);
    return o;
}

void start(daemon::Runtime& rt) {
    // GStreamer's plugin registry cache: in the state directory, which the daemon can write
    // (its home under systemd is not), so starts after the first do not rescan plugins.
    setenv("GST_REGISTRY_1_0", (rt.state_dir()->path() + "/gst-registry.bin").c_str(), 0);
    if (auto missing = transcoded::missing_elements(transcoded::needed_elements());
        !missing.empty())
        throw std::runtime_error(transcoded::describe_missing(missing));
    std::filesystem::path dir = rt.state_dir()->path() + "/jobs";
    g_env = std::make_unique<lmdb::Env>(dir);
    g_jobs = std::make_unique<transcoded::JobQueue>(*g_env, queue_options());
    transcoded::add_job_routes(rt.control_router(), *g_jobs);
    auto total = [](auto field) {
        return [field] {
            double n = 0;
            for (const auto& c : g_jobs->counts())
                n += double(c.*field);
            return n;
        };
    };
    rt.metrics().gauge_callback("strata_transcoded_jobs_ready", "Jobs waiting to run now",
                                total(&queue::Counts::ready));
    rt.metrics().gauge_callback("strata_transcoded_jobs_delayed",
                                "Jobs waiting for a retry (backoff)",
                                total(&queue::Counts::delayed));
    rt.metrics().gauge_callback("strata_transcoded_jobs_running", "Jobs leased by a worker",
                                total(&queue::Counts::leased));
    rt.metrics().gauge_callback("strata_transcoded_jobs_failed",
                                "Jobs dead-lettered (stratactl transcode retry ID)",
                                total(&queue::Counts::dead));
}

} // namespace

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "transcoded",
        .summary = "Strata video and image processing queue.",
        .state_dir = "/var/lib/strata/transcode",
        .start = start,
    };
    return strata::daemon::main(argc, argv, spec);
}

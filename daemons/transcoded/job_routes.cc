#include "job_routes.hh"

#include "log/utc_time.hh"

namespace strata::transcoded {

namespace {

const char* state_name(queue::State s) {
    switch (s) {
    case queue::State::pending:
        return "pending";
    case queue::State::leased:
        return "running";
    case queue::State::dead:
        return "failed";
    }
    return "pending";
}

JobId id_param(const http::Request& req) {
    auto id = JobId::parse(req.params.at("id"));
    if (!id)
        throw http::Error(404, "no_such_job",
                          "job ids look like images.12, short.3, videos.7 or long.1");
    return *id;
}

nlohmann::json running_json(const RunningJob& r) {
    return {{"id", r.id.str()},
            {"file_id", r.file_id},
            {"pid", r.pid},
            {"percent", r.progress.percent},
            {"stage", r.progress.stage},
            {"seconds",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - r.started).count()}};
}

} // namespace

nlohmann::json job_json(const JobInfo& i) {
    nlohmann::json j = {{"id", i.id.str()},
                        {"priority", priority_name(i.id.priority)},
                        {"state", state_name(i.state)},
                        {"attempts", i.attempts},
                        {"submitted_at", log::utc_time(i.enqueued_at)},
                        {"job", to_json(i.job)}};
    // pending: when it may run next; running: when its lease ends; failed: since when.
    j[i.state == queue::State::pending  ? "runs_after"
      : i.state == queue::State::leased ? "lease_until"
                                        : "failed_at"] = log::utc_time(i.due);
    if (!i.last_error.empty()) j["last_error"] = i.last_error;
    return j;
}

void add_job_routes(http::Router& router, JobQueue& jobs, Scheduler* scheduler) {
    // Durable before the answer; a job that ran (or was cancelled) within the retention
    // answers 200 "ended" instead of 202.
    auto submit = [&jobs, scheduler](const Job& job) {
        JobId id = jobs.submit(job);
        if (scheduler) scheduler->wake();
        auto info = jobs.find(id);
        if (!info)
            return http::Response::json(
                200, {{"id", id.str()},
                      {"state", "ended"},
                      {"message", "this file version's job has ended (done or cancelled); "
                                  "submit the file's next version"}});
        return http::Response::json(202, job_json(*info));
    };
    router.add_blocking("POST", "/v1/jobs", [submit](http::Request& req) {
        Job job;
        try {
            job = parse_job(req.json());
        } catch (const std::invalid_argument& e) {
            throw http::Error(400, "bad_job", e.what());
        }
        return submit(job);
    });
    router.add_blocking("POST", "/v1/events", [submit](http::Request& req) {
        std::optional<Job> job;
        try {
            job = job_of_event(req.json());
        } catch (const std::invalid_argument& e) {
            // Answered 2xx all the same: metad would otherwise retry it forever.
            return http::Response::json(200, {{"ignored", std::string("bad event: ") + e.what()}});
        }
        if (!job) return http::Response::json(200, {{"ignored", "not a job for transcoded"}});
        return submit(*job);
    });
    router.get("/v1/jobs", [&jobs, scheduler](http::Request&) {
        nlohmann::json classes = nlohmann::json::array();
        auto counts = jobs.counts();
        for (unsigned p = 0; p < kPriorities; ++p)
            classes.push_back({{"priority", priority_name(static_cast<Priority>(p))},
                               {"ready", counts[p].ready},
                               {"delayed", counts[p].delayed},
                               {"running", counts[p].leased},
                               {"failed", counts[p].dead}});
        nlohmann::json failed = nlohmann::json::array();
        for (const auto& i : jobs.dead(100))
            failed.push_back(job_json(i));
        nlohmann::json running = nlohmann::json::array(), recent = nlohmann::json::array();
        if (scheduler) {
            for (const auto& r : scheduler->running())
                running.push_back(running_json(r));
            for (const auto& f : scheduler->finished())
                recent.push_back({{"id", f.id.str()},
                                  {"file_id", f.file_id},
                                  {"outcome", f.outcome},
                                  {"reason", f.reason},
                                  {"wall_seconds", f.wall_seconds},
                                  {"cpu_seconds", f.cpu_seconds},
                                  {"max_rss_bytes", f.max_rss_bytes}});
        }
        return http::Response::json(
            200,
            {{"queues", classes}, {"running", running}, {"failed", failed}, {"recent", recent}});
    });
    router.get("/v1/jobs/{id}", [&jobs, scheduler](http::Request& req) {
        JobId id = id_param(req);
        auto info = jobs.find(id);
        if (!info) throw http::Error(404, "no_such_job", "no job " + req.params.at("id"));
        auto j = job_json(*info);
        if (scheduler)
            for (const auto& r : scheduler->running())
                if (r.id.str() == id.str()) j["worker"] = running_json(r);
        return http::Response::json(200, j);
    });
    // On the loop, where the workers are: a running job's worker is killed, and the job
    // removed once it is gone (the file is then marked failed, "cancelled").
    router.add("DELETE", "/v1/jobs/{id}", [&jobs, scheduler](http::Request& req) {
        JobId id = id_param(req);
        auto info = jobs.find(id);
        if (!info) throw http::Error(404, "no_such_job", "no job " + req.params.at("id"));
        if (info->state == queue::State::leased) {
            auto r = scheduler ? scheduler->cancel(id) : Scheduler::CancelResult::not_here;
            if (r == Scheduler::CancelResult::too_late)
                throw http::Error(409, "job_finishing",
                                  "the job's worker is done: its result is being recorded");
            if (r == Scheduler::CancelResult::not_here)
                throw http::Error(409, "job_running",
                                  "the job is leased by a worker that is not this daemon's; "
                                  "it can be cancelled once its lease ends");
            return http::Response::json(202, {{"id", id.str()}, {"state", "cancelling"}});
        }
        if (!jobs.cancel(id))
            throw http::Error(409, "job_running", "the job started: cancel it again");
        return http::Response::json(200, {{"id", id.str()}, {"state", "cancelled"}});
    });
    router.add_blocking("POST", "/v1/jobs/{id}/retry", [&jobs](http::Request& req) {
        JobId id = id_param(req);
        auto info = jobs.find(id);
        if (!info) throw http::Error(404, "no_such_job", "no job " + req.params.at("id"));
        if (info->state != queue::State::dead || !jobs.retry(id))
            throw http::Error(409, "job_not_failed", "only a failed job can be retried");
        auto now = jobs.find(id);
        return http::Response::json(200, now ? job_json(*now) : nlohmann::json{{"id", id.str()}});
    });
}

} // namespace strata::transcoded

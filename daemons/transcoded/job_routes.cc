#include "job_routes.hh"

#include "log/utc_time.hh"

namespace strata::transcoded {

namespace {

std::string utc(queue::TimePoint t) {
    return log::utc_time(t);
}

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

} // namespace

nlohmann::json job_json(const JobInfo& i) {
    nlohmann::json j = {{"id", i.id.str()},
                        {"priority", priority_name(i.id.priority)},
                        {"state", state_name(i.state)},
                        {"attempts", i.attempts},
                        {"submitted_at", utc(i.enqueued_at)},
                        {"job", to_json(i.job)}};
    // pending: when it may run next; running: when its lease ends; failed: since when.
    j[i.state == queue::State::pending  ? "runs_after"
      : i.state == queue::State::leased ? "lease_until"
                                        : "failed_at"] = utc(i.due);
    if (!i.last_error.empty()) j["last_error"] = i.last_error;
    return j;
}

void add_job_routes(http::Router& router, JobQueue& jobs) {
    router.add_blocking("POST", "/v1/jobs", [&jobs](http::Request& req) {
        Job job;
        try {
            job = parse_job(req.json());
        } catch (const std::invalid_argument& e) {
            throw http::Error(400, "bad_job", e.what());
        }
        JobId id = jobs.submit(job);
        auto info = jobs.find(id);
        if (!info) // this file version's job ran (or was cancelled) within the retention
            return http::Response::json(
                200, {{"id", id.str()},
                      {"state", "ended"},
                      {"message", "this file version's job has ended (done or cancelled); "
                                  "submit the file's next version"}});
        return http::Response::json(202, job_json(*info));
    });
    router.get("/v1/jobs", [&jobs](http::Request&) {
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
        return http::Response::json(200, {{"queues", classes}, {"failed", failed}});
    });
    router.get("/v1/jobs/{id}", [&jobs](http::Request& req) {
        auto info = jobs.find(id_param(req));
        if (!info) throw http::Error(404, "no_such_job", "no job " + req.params.at("id"));
        return http::Response::json(200, job_json(*info));
    });
    router.add_blocking("DELETE", "/v1/jobs/{id}", [&jobs](http::Request& req) {
        JobId id = id_param(req);
        auto info = jobs.find(id);
        if (!info) throw http::Error(404, "no_such_job", "no job " + req.params.at("id"));
        if (info->state == queue::State::leased || !jobs.cancel(id))
            throw http::Error(409, "job_running", "the job is running: it cannot be cancelled");
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

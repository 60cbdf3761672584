// stratactl transcode ...: strata-transcoded's job queue (counts, failed jobs, one job),
// cancelling and retrying jobs.
#include "commands.hh"
#include "format.hh"

#include <fmt/format.h>

namespace strata::ctl {

namespace {

// The job API's answer, or the error it gave (printed) as nullopt.
std::optional<nlohmann::json> call(const Context& ctx, const std::string& method,
                                   const std::string& path) {
    try {
        auto r = client_for(ctx, "transcoded").request({.method = method, .path = path});
        nlohmann::json j;
        try {
            j = r.json();
        } catch (const http_client::Error&) {
        }
        if (r.status >= 300) {
            std::string message = j.is_object() && j.contains("error")
                                      ? j["error"].value("message", std::string())
                                      : fmt::format("answered {}", r.status);
            fmt::print(stderr, "strata-transcoded: {}\n", message);
            return std::nullopt;
        }
        return j;
    } catch (const http_client::Error& e) {
        fmt::print(stderr, "{}\n", explain(ctx, "transcoded", e));
        return std::nullopt;
    }
}

std::string field(const nlohmann::json& j, const char* name) {
    if (!j.contains(name)) return "-";
    return j[name].is_string() ? j[name].get<std::string>() : j[name].dump();
}

void print_job(const nlohmann::json& j) {
    const auto& job = j.contains("job") ? j["job"] : nlohmann::json::object();
    std::vector<std::vector<std::string>> rows{{"FIELD", "VALUE"}};
    for (const char* k : {"id", "state", "attempts", "submitted_at", "runs_after", "lease_until",
                          "failed_at", "last_error"})
        if (j.contains(k)) rows.push_back({k, field(j, k)});
    for (const char* k : {"file_id", "version", "kind", "source", "bytes", "duration_seconds"})
        if (job.contains(k)) rows.push_back({k, field(job, k)});
    if (j.contains("worker"))
        for (const char* k : {"pid", "percent", "stage", "seconds"})
            rows.push_back({std::string("worker ") + k, field(j["worker"], k)});
    fmt::print("{}", render_table(rows));
}

} // namespace

int cmd_transcode(const Context& ctx, const std::vector<std::string>& args) {
    const std::string& verb = args[0];
    if (verb == "queue") {
        auto j = call(ctx, "GET", "/v1/jobs");
        if (!j) return 1;
        if (ctx.json) {
            fmt::print("{}\n", (*j)["queues"].dump(2));
            return 0;
        }
        std::vector<std::vector<std::string>> rows{
            {"PRIORITY", "READY", "DELAYED", "RUNNING", "FAILED"}};
        for (const auto& q : (*j)["queues"])
            rows.push_back({field(q, "priority"), field(q, "ready"), field(q, "delayed"),
                            field(q, "running"), field(q, "failed")});
        fmt::print("{}", render_table(rows));
        return 0;
    }
    if (verb == "jobs" && args.size() == 1) { // the failed jobs: what needs an operator
        auto j = call(ctx, "GET", "/v1/jobs");
        if (!j) return 1;
        if (ctx.json) {
            fmt::print("{}\n",
                       nlohmann::json{{"running", j->value("running", nlohmann::json::array())},
                                      {"failed", (*j)["failed"]}}
                           .dump(2));
            return 0;
        }
        if (auto running = j->value("running", nlohmann::json::array()); !running.empty()) {
            std::vector<std::vector<std::string>> rows{
                {"ID", "FILE", "PID", "PERCENT", "STAGE", "SECONDS"}};
            for (const auto& r : running)
                rows.push_back({field(r, "id"), field(r, "file_id"), field(r, "pid"),
                                fmt::format("{:.1f}", r.value("percent", 0.0)), field(r, "stage"),
                                fmt::format("{:.0f}", r.value("seconds", 0.0))});
            fmt::print("{}\n", render_table(rows));
        }
        std::vector<std::vector<std::string>> rows{
            {"ID", "FILE", "VERSION", "KIND", "ATTEMPTS", "FAILED AT", "REASON"}};
        for (const auto& f : (*j)["failed"])
            rows.push_back({field(f, "id"), field(f["job"], "file_id"), field(f["job"], "version"),
                            field(f["job"], "kind"), field(f, "attempts"), field(f, "failed_at"),
                            field(f, "last_error")});
        fmt::print("{}", render_table(rows));
        return 0;
    }
    const std::string& id = args[1];
    auto j = verb == "jobs"     ? call(ctx, "GET", "/v1/jobs/" + id)
             : verb == "cancel" ? call(ctx, "DELETE", "/v1/jobs/" + id)
                                : call(ctx, "POST", "/v1/jobs/" + id + "/retry");
    if (!j) return 1;
    if (ctx.json)
        fmt::print("{}\n", j->dump(2));
    else if (verb == "cancel")
        fmt::print("{} {}\n", id,
                   j->value("state", "") == "cancelling"
                       ? "cancelling: its worker is stopped, then the job is removed"
                       : "cancelled");
    else
        print_job(*j);
    return 0;
}

} // namespace strata::ctl

#include "commands.hh"

#include "auth/session_token.hh"
#include "format.hh"
#include "http_client/client.hh"

#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace strata::ctl {

const char* const kDaemons[7] = {"dnsd",   "lbd",        "gatewayd", "metad",
                                 "blockd", "transcoded", "notifyd"};

bool is_daemon_name(const std::string& name) {
    for (const char* d : kDaemons)
        if (name == d) return true;
    return false;
}

std::string socket_of(const Context& ctx, const std::string& name) {
    return ctx.runtime_dir + "/" + name + ".sock";
}

http_client::Client client_for(const Context& ctx, const std::string& name) {
    http_client::Options opts;
    opts.connect_timeout = ctx.timeout;
    opts.timeout = ctx.timeout;
    opts.max_connections = 1;
    return http_client::Client("unix:" + socket_of(ctx, name), opts);
}

// One line that says what is wrong in operator terms.
std::string explain(const Context& ctx, const std::string& name, const http_client::Error& e) {
    using K = http_client::ErrorKind;
    switch (e.kind()) {
    case K::not_found:
        return fmt::format("strata-{} is down: no socket at {}", name, socket_of(ctx, name));
    case K::refused:
        return fmt::format("strata-{} is down: nothing listens on {}", name, socket_of(ctx, name));
    case K::permission_denied:
        return fmt::format("no permission to talk to strata-{} ({}): run as root or as a "
                           "member of group _strata",
                           name, socket_of(ctx, name));
    case K::timeout:
        return fmt::format("strata-{} did not answer in time", name);
    default:
        return fmt::format("strata-{}: {}", name, e.what());
    }
}

namespace {

struct Row {
    std::string name, state, version, uptime, pid;
};

Row probe(const Context& ctx, const std::string& name, std::string& note) {
    Row row{name, "down", "-", "-", "-"};
    try {
        auto client = client_for(ctx, name);
        auto health = client.request({.method = "GET", .path = "/healthz"});
        row.state = health.status == 200 ? "up" : fmt::format("unhealthy ({})", health.status);
        auto status = client.request({.method = "GET", .path = "/v1/status"});
        if (status.status == 200) {
            auto j = status.json();
            row.version = j.value("version", "-");
            row.uptime = format_uptime(j.value("uptime_seconds", 0.0));
            row.pid = std::to_string(j.value("pid", 0));
        }
    } catch (const http_client::Error& e) {
        row.state = e.kind() == http_client::ErrorKind::permission_denied ? "no access" : "down";
        note = explain(ctx, name, e);
    } catch (const std::exception& e) {
        row.state = "error";
        note = fmt::format("strata-{}: {}", name, e.what());
    }
    return row;
}

} // namespace

int cmd_status(const Context& ctx) {
    std::vector<std::vector<std::string>> rows = {{"DAEMON", "STATE", "VERSION", "UPTIME", "PID"}};
    std::vector<std::string> notes;
    nlohmann::json json = nlohmann::json::array();
    bool all_up = true;
    for (const char* d : kDaemons) {
        std::string note;
        Row r = probe(ctx, d, note);
        all_up = all_up && r.state == "up";
        rows.push_back({"strata-" + r.name, r.state, r.version, r.uptime, r.pid});
        json.push_back({{"daemon", r.name},
                        {"state", r.state},
                        {"version", r.version},
                        {"uptime", r.uptime},
                        {"pid", r.pid}});
        if (!note.empty()) notes.push_back(note);
    }
    if (ctx.json) {
        fmt::print("{}\n", json.dump(2));
    } else {
        fmt::print("{}", render_table(rows));
        for (const auto& n : notes)
            fmt::print(stderr, "{}\n", n);
    }
    return all_up ? 0 : 3;
}

int cmd_reload(const Context& ctx, const std::string& name) {
    try {
        auto r = client_for(ctx, name).request({.method = "POST", .path = "/v1/reload"});
        auto j = r.json();
        if (r.status == 200) {
            fmt::print("strata-{}: configuration reloaded ({})\n", name,
                       j.value("config_digest", "?"));
            return 0;
        }
        std::string message = j.contains("error") ? j["error"].value("message", r.body) : r.body;
        fmt::print(stderr, "strata-{}: reload rejected, previous configuration kept:\n{}\n", name,
                   message);
        return 1;
    } catch (const http_client::Error& e) {
        fmt::print(stderr, "{}\n", explain(ctx, name, e));
        return 1;
    }
}

int cmd_metrics(const Context& ctx, const std::string& name) {
    try {
        auto r = client_for(ctx, name).request({.method = "GET", .path = "/metrics"});
        if (r.status != 200) {
            fmt::print(stderr, "strata-{}: /metrics answered {}\n", name, r.status);
            return 1;
        }
        std::fwrite(r.body.data(), 1, r.body.size(), stdout);
        return 0;
    } catch (const http_client::Error& e) {
        fmt::print(stderr, "{}\n", explain(ctx, name, e));
        return 1;
    }
}

int cmd_blocks_stats(const Context& ctx) {
    try {
        auto r = client_for(ctx, "blockd").request({.method = "GET", .path = "/v1/blocks/stats"});
        if (r.status != 200) {
            fmt::print(stderr, "strata-blockd: /v1/blocks/stats answered {}\n", r.status);
            return 1;
        }
        auto j = r.json();
        if (ctx.json) {
            fmt::print("{}\n", j.dump(2));
            return 0;
        }
        fmt::print("{}", render_table({{"BLOCKS", "BYTES", "FILES", "LOGICAL BYTES", "DEDUPE"},
                                       {std::to_string(j.value("blocks", 0ull)),
                                        std::to_string(j.value("bytes", 0ull)),
                                        std::to_string(j.value("files", 0ull)),
                                        std::to_string(j.value("logical_bytes", 0ull)),
                                        fmt::format("{:.2f}x", j.value("dedupe_ratio", 1.0))}}));
        return 0;
    } catch (const http_client::Error& e) {
        fmt::print(stderr, "{}\n", explain(ctx, "blockd", e));
        return 1;
    }
}

int cmd_auth_public_key(const std::string& key_file) {
    try {
        fmt::print("{}\n", auth::SessionSigner::from_seed_file(key_file).public_key_hex());
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "stratactl: {}\n", e.what());
        return 1;
    }
}

} // namespace strata::ctl

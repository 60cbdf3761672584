// stratactl meta ...: metad's counts, and backup / restore of its database.
#include "commands.hh"
#include "format.hh"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <lmdb.h>
#include <memory>
#include <unistd.h>
#include <vector>

namespace strata::ctl {

namespace fs = std::filesystem;

int cmd_meta_stats(const Context& ctx) {
    try {
        auto r = client_for(ctx, "metad").request({.method = "GET", .path = "/v1/meta/stats"});
        if (r.status != 200) {
            fmt::print(stderr, "strata-metad: /v1/meta/stats answered {}\n", r.status);
            return 1;
        }
        auto j = r.json();
        if (ctx.json) {
            fmt::print("{}\n", j.dump(2));
            return 0;
        }
        fmt::print("{}", render_table({{"USERS", "SESSIONS", "NODES", "MAP BYTES"},
                                       {std::to_string(j.value("users", 0ull)),
                                        std::to_string(j.value("sessions", 0ull)),
                                        std::to_string(j.value("nodes", 0ull)),
                                        std::to_string(j.value("map_bytes", 0ull))}}));
        // Work waiting in metad's queues: feed fan-out and one outbox per event sink.
        std::vector<std::vector<std::string>> rows{
            {"QUEUE", "READY", "DELAYED", "LEASED", "DEAD", "DELIVERED"}};
        auto row = [&](const std::string& name, const nlohmann::json& q, std::string delivered) {
            rows.push_back({name, std::to_string(q.value("ready", 0ull)),
                            std::to_string(q.value("delayed", 0ull)),
                            std::to_string(q.value("leased", 0ull)),
                            std::to_string(q.value("dead", 0ull)), std::move(delivered)});
        };
        if (j.contains("fanout")) row("fanout", j["fanout"], "-");
        for (const auto& s : j.value("event_sinks", nlohmann::json::array()))
            row("events-" + s.value("name", std::string()), s["queue"],
                std::to_string(s.value("delivered", 0ull)));
        fmt::print("\n{}", render_table(rows));
        return 0;
    } catch (const http_client::Error& e) {
        fmt::print(stderr, "{}\n", explain(ctx, "metad", e));
        return 1;
    }
}

namespace {

int report(const Context& ctx, const http_client::Response& r) {
    if (r.ok()) return 0;
    std::string message = r.body;
    try {
        message = r.json()["error"]["message"].get<std::string>();
    } catch (...) {
    }
    fmt::print(stderr, "strata-metad: {} ({})\n", message, r.status);
    (void)ctx;
    return 1;
}

void print_users(const Context& ctx, const nlohmann::json& users) {
    if (ctx.json) {
        fmt::print("{}\n", users.dump(2));
        return;
    }
    std::vector<std::vector<std::string>> rows{{"ID", "NAME", "EMAIL", "ROOT", "DISABLED"}};
    for (const auto& u : users)
        rows.push_back({u.value("id", ""), u.value("name", ""), u.value("email", ""),
                        u.value("root", ""), u.value("disabled", false) ? "yes" : "no"});
    fmt::print("{}", render_table(rows));
}

} // namespace

int cmd_meta_user(const Context& ctx, const std::vector<std::string>& args) {
    try {
        auto metad = client_for(ctx, "metad");
        const std::string& verb = args.at(0);
        if (verb == "list") {
            nlohmann::json all = nlohmann::json::array();
            std::string after;
            for (int page = 0; page < 10000; ++page) { // bounded: 10 million users
                auto r = metad.request(
                    {.method = "GET",
                     .path = "/v1/admin/users" + (after.empty() ? "" : "?after=" + after)});
                if (int rc = report(ctx, r)) return rc;
                auto j = r.json();
                for (auto& u : j["items"])
                    all.push_back(u);
                if (j["next_after"].is_null()) break;
                after = j["next_after"].get<std::string>();
            }
            print_users(ctx, all);
            return 0;
        }
        if (verb == "add") {
            // The password comes on standard input (one line), never on the command line.
            std::string password;
            if (!std::getline(std::cin, password)) {
                fmt::print(stderr, "stratactl: give the new user's password on standard input\n");
                return 2;
            }
            auto r = metad.post_json(
                "/v1/admin/users",
                {{"name", args.at(1)}, {"email", args.at(2)}, {"password", password}});
            if (int rc = report(ctx, r)) return rc;
            print_users(ctx, nlohmann::json::array({r.json()}));
            return 0;
        }
        // disable / enable NAME|ID
        auto r = metad.request({.method = "PATCH",
                                .path = "/v1/admin/users/" + args.at(1),
                                .headers = {{"Content-Type", "application/json"}},
                                .body = nlohmann::json{{"disabled", verb == "disable"}}.dump()});
        if (int rc = report(ctx, r)) return rc;
        print_users(ctx, nlohmann::json::array({r.json()}));
        return 0;
    } catch (const http_client::Error& e) {
        fmt::print(stderr, "{}\n", explain(ctx, "metad", e));
        return 1;
    }
}

// Streams GET /v1/meta/backup into FILE.part, fsyncs it and renames it to FILE, so FILE is
// either absent or a whole copy.
int cmd_meta_backup(const Context& ctx, const std::string& file) {
    std::string part = file + ".part";
    int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fmt::print(stderr, "stratactl: {}: {}\n", part, std::strerror(errno));
        return 1;
    }
    bool write_failed = false;
    std::string error_body; // what a non-200 answer said
    int status = 0;
    try {
        http_client::Request req{.method = "GET", .path = "/v1/meta/backup"};
        req.timeout = std::chrono::hours(24); // a large database takes a while to copy
        req.body_sink = [&](std::string_view chunk) {
            while (!chunk.empty()) {
                ssize_t n = ::write(fd, chunk.data(), chunk.size());
                if (n <= 0) {
                    if (n < 0 && errno == EINTR) continue;
                    write_failed = true;
                    return false;
                }
                chunk.remove_prefix(static_cast<std::size_t>(n));
            }
            return true;
        };
        status = client_for(ctx, "metad").request(std::move(req)).status;
    } catch (const http_client::Error& e) {
        ::close(fd);
        ::unlink(part.c_str());
        fmt::print(stderr, "{}\n",
                   write_failed ? "stratactl: cannot write " + part : explain(ctx, "metad", e));
        return 1;
    }
    bool ok = status == 200 && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (!ok) {
        ::unlink(part.c_str());
        fmt::print(stderr, "stratactl: backup failed (metad answered {})\n", status);
        return 1;
    }
    if (::rename(part.c_str(), file.c_str()) != 0) {
        fmt::print(stderr, "stratactl: {}: {}\n", file, std::strerror(errno));
        ::unlink(part.c_str());
        return 1;
    }
    fmt::print("backup written to {} ({} bytes)\n", file, fs::file_size(file));
    return 0;
}

namespace {

// "" when `file` is an LMDB environment (one file) with metad's databases in it.
std::string check_backup(const std::string& file) {
    MDB_env* env = nullptr;
    if (int rc = mdb_env_create(&env); rc != 0) return mdb_strerror(rc);
    std::unique_ptr<MDB_env, void (*)(MDB_env*)> guard(env, mdb_env_close);
    mdb_env_set_maxdbs(env, 32);
    if (int rc = mdb_env_open(env, file.c_str(), MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0);
        rc != 0)
        return mdb_strerror(rc);
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn); rc != 0) return mdb_strerror(rc);
    std::string why;
    for (const char* name : {"users", "nodes", "children", "meta"}) {
        MDB_dbi dbi;
        if (mdb_dbi_open(txn, name, 0, &dbi) != 0) {
            why = std::string("no \"") + name + "\" database";
            break;
        }
    }
    mdb_txn_abort(txn);
    return why;
}

} // namespace

int cmd_meta_restore(const Context& ctx, const std::string& file, const std::string& state_dir) {
    // metad must not run on the database being replaced.
    try {
        auto r = client_for(ctx, "metad").get("/healthz");
        (void)r;
        fmt::print(stderr, "stratactl: strata-metad is running; stop it first "
                           "(systemctl stop strata-metad)\n");
        return 1;
    } catch (const http_client::Error&) {
        // not reachable: good
    }
    // The file must be an LMDB environment holding metad's databases.
    if (std::string why = check_backup(file); !why.empty()) {
        fmt::print(stderr, "stratactl: {} is not a metad backup: {}\n", file, why);
        return 1;
    }
    fs::path db = fs::path(state_dir) / "db";
    std::error_code ec;
    fs::create_directories(db, ec);
    fs::path tmp = db / "data.mdb.restore";
    fs::copy_file(file, tmp, fs::copy_options::overwrite_existing, ec);
    int fd = ec ? -1 : ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        if (fd >= 0) ::close(fd);
        fs::remove(tmp, ec);
        fmt::print(stderr, "stratactl: cannot copy {} into {}\n", file, db.string());
        return 1;
    }
    ::close(fd);
    fs::rename(tmp, db / "data.mdb", ec);
    if (ec) {
        fmt::print(stderr, "stratactl: {}: {}\n", (db / "data.mdb").string(), ec.message());
        return 1;
    }
    fs::remove(db / "lock.mdb", ec); // stale readers of the old database
    fmt::print("restored {} into {}; start strata-metad\n", file, db.string());
    return 0;
}

} // namespace strata::ctl

#include "daemon/runtime.hh"

#include "daemon/activation.hh"
#include "daemon/identity.hh"
#include "daemon/notify.hh"
#include "daemon/options.hh"
#include "http/content_server.hh"
#include "http/listen.hh"
#include "log/log.hh"
#include "log/utc_time.hh"
#include "strata_build_config.h"

#include <charconv>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::daemon {

config::Schema common_schema(const std::string& state_dir) {
    config::Schema s;
    s.string("daemon.runtime_dir", "/run/strata", false,
             "directory holding the control socket NAME.sock");
    s.string("daemon.user", "_strata", false,
             "user to switch to after binding when started as root; \"\" keeps the current user");
    s.string("daemon.group", "_strata", false,
             "group of the control socket and of the process when switching; \"\" leaves it");
    if (!state_dir.empty())
        s.string("daemon.state_dir", state_dir, false, "directory holding the daemon's state");
    s.string("log.level", "info", true, "lowest priority logged",
             {"debug", "info", "notice", "warning", "error"});
    s.integer("http.max_header_bytes", 16384, 1024, 1048576, false,
              "request line plus headers; larger requests get 431");
    s.integer("http.max_body_bytes", 1048576, 0, 17179869184LL, true,
              "request body size; larger bodies get 413");
    s.integer("http.connection_limit", 256, 1, 65536, false,
              "concurrent connections per listening socket");
    s.integer("http.idle_timeout", 60, 1, 3600, false,
              "seconds before an idle keep-alive connection is closed");
    return s;
}

config::Schema full_schema(const Spec& spec) {
    config::Schema s = common_schema(spec.state_dir);
    if (spec.extend_schema) spec.extend_schema(s);
    return s;
}

namespace {

constexpr std::uint64_t kStopDeadlineMs = 4500;

std::string iso8601(std::chrono::system_clock::time_point t) {
    return log::utc_time(t);
}

void log_config_error(const config::Error& e) {
    for (const auto& p : e.problems())
        log::write(log::Level::error, p.to_string(),
                   {{"CONFIG_FILE", p.file}, {"CONFIG_LINE", std::to_string(p.line)}});
}

template <typename F>
void on_signal(uv_loop_t* loop, uv_signal_t* handle, int signum, void* data, F cb) {
    uv_signal_init(loop, handle);
    handle->data = data;
    uv_signal_start(handle, cb, signum);
}

void close_handle(uv_handle_t* h) {
    if (h->loop && !uv_is_closing(h)) uv_close(h, nullptr);
}

} // namespace

Runtime::Runtime(const Spec& spec, std::string config_path, config::Config config)
    : spec_(spec), config_path_(std::move(config_path)), config_(std::move(config)) {
    uv_loop_init(&loop_);
}

Runtime::~Runtime() {
    if (spec_.stop) spec_.stop(*this);
    servers_.clear();
    // Let libuv finish closing whatever is left, then release the loop.
    uv_walk(
        &loop_, [](uv_handle_t* h, void*) { close_handle(h); }, nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    for (const auto& path : bound_paths_)
        unlink(path.c_str());
}

http::Limits Runtime::limits() const {
    http::Limits l;
    l.max_header_bytes = static_cast<std::size_t>(config_.integer("http.max_header_bytes"));
    l.max_body_bytes = static_cast<std::size_t>(config_.integer("http.max_body_bytes"));
    l.connection_limit = static_cast<unsigned>(config_.integer("http.connection_limit"));
    l.idle_timeout_seconds = static_cast<unsigned>(config_.integer("http.idle_timeout"));
    l.body_buffer_bytes = spec_.http_body_buffer_bytes;
    return l;
}

void Runtime::add_listener(std::string fd_name, std::vector<std::string> addresses,
                           const http::Router& router, Engine engine,
                           std::optional<std::string> tls_priorities) {
    if (tls_priorities && engine != Engine::general)
        throw std::logic_error("TLS listeners use the general HTTP engine");
    listeners_.push_back(
        {std::move(fd_name), std::move(addresses), &router, engine, std::move(tls_priorities)});
}

std::optional<Identity> Runtime::target_identity() const {
    const auto& user = config_.string("daemon.user");
    if (geteuid() != 0 || user.empty()) return std::nullopt;
    return lookup_identity(user, config_.string("daemon.group"));
}

void Runtime::open_state() {
    if (spec_.state_dir.empty()) return;
    std::optional<std::pair<uid_t, gid_t>> owner;
    if (auto id = target_identity()) owner = std::make_pair(id->uid, id->gid);
    state_ = std::make_unique<StateDir>(config_.string("daemon.state_dir"), owner);
}

void Runtime::take_sockets() {
    auto activated = ActivatedSockets::from_environment();
    http::Limits lim = limits();

    auto control = std::make_unique<http::Server>(&loop_, control_router_, lim);
    auto fds = activated.take("control");
    if (fds.empty()) {
        const auto& dir = config_.string("daemon.runtime_dir");
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec)
            throw std::runtime_error(dir + ": cannot create runtime directory: " + ec.message());
        std::string path = dir + "/" + spec_.name + ".sock";
        const auto& group = config_.string("daemon.group");
        auto gid = lookup_group(group);
        if (!group.empty() && !gid)
            throw std::runtime_error("group '" + group +
                                     "' does not exist (create it with systemd-sysusers, or set "
                                     "daemon.group = \"\")");
        fds.push_back(http::listen_unix(path, 0660, gid.value_or(static_cast<gid_t>(-1))));
        bound_paths_.push_back(path);
        log::info("listening on {}", path);
    } else {
        log::info("using {} control socket(s) from systemd", fds.size());
    }
    for (int fd : fds)
        control->serve(fd);
    servers_.push_back(std::move(control));

    for (const auto& l : listeners_) {
        std::unique_ptr<http::ServerBase> server;
        http::Server* tls_server = nullptr;
        if (l.engine == Engine::content) {
            server = std::make_unique<http::ContentServer>(&loop_, *l.router, lim);
        } else {
            auto general = std::make_unique<http::Server>(&loop_, *l.router, lim);
            if (l.tls_priorities) tls_server = general.get();
            server = std::move(general);
        }
        const char* kind = tls_server ? ", TLS" : "";
        auto lfds = activated.take(l.fd_name);
        if (lfds.empty()) {
            for (const auto& address : l.addresses) {
                lfds.push_back(http::listen_tcp(address));
                log::info("listening on {} ({}{})", address, l.fd_name, kind);
            }
        } else {
            log::info("using {} {} socket(s) from systemd{}", lfds.size(), l.fd_name, kind);
        }
        for (int fd : lfds) {
            if (tls_server)
                tls_server->serve_tls(fd, *l.tls_priorities);
            else
                server->serve(fd);
        }
        servers_.push_back(std::move(server));
    }
    for (const auto& name : activated.leftover_names())
        log::warning("closing socket '{}' passed by systemd: this daemon does not use it", name);
    activated.close_leftovers();

    for (std::size_t i = 0; i < servers_.size(); ++i) {
        auto& server = servers_[i];
        const bool listener = i > 0; // servers_[0] is the control socket's
        server->set_observer([this, listener](const http::Exchange& x) {
            std::string_view route = x.route.empty() ? std::string_view("none") : x.route;
            char code[8];
            auto [end, ec] = std::to_chars(code, code + sizeof code, x.status);
            std::string_view status(code, static_cast<std::size_t>(end - code));
            requests_->with({route, std::string_view(x.request.method), status}).inc();
            request_seconds_->with({route}).observe(x.seconds);
            if (x.body_bytes) response_bytes_->with({route}).inc(static_cast<double>(x.body_bytes));
            if (x.request_body_bytes)
                request_bytes_->with({route}).inc(static_cast<double>(x.request_body_bytes));
            if (listener && listener_observer_) listener_observer_(x);
        });
    }
}

void Runtime::drop_privileges() {
    auto id = target_identity();
    if (!id) return;
    switch_to(*id);
    log::info("running as {}:{}", config_.string("daemon.user"), config_.string("daemon.group"));
}

void Runtime::install_metrics() {
    metrics_.gauge_family("strata_build_info", "Daemon name and version", {"daemon", "version"})
        .with({spec_.name, STRATA_VERSION})
        .set(1);
    metrics_.gauge("strata_process_start_time_seconds", "Start time, seconds since the epoch")
        .set(std::chrono::duration<double>(started_wall_.time_since_epoch()).count());
    metrics_.gauge_callback("strata_uptime_seconds", "Seconds since the daemon started", [this] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    });
    // Routes are the patterns of the route table ("none" when nothing matched), so the label
    // sets stay small whatever paths clients send.
    requests_ = &metrics_.counter_family("strata_http_requests_total",
                                         "HTTP requests answered, by route, method and status",
                                         {"route", "method", "code"});
    request_seconds_ = &metrics_.histogram_family(
        "strata_http_request_duration_seconds",
        "Time from request headers to queued response, by route", {"route"});
    request_bytes_ = &metrics_.counter_family("strata_http_request_body_bytes_total",
                                              "Request body bytes received, by route", {"route"});
    response_bytes_ = &metrics_.counter_family("strata_http_response_body_bytes_total",
                                               "Response body bytes sent, by route", {"route"});
    reloads_ = &metrics_.counter_family("strata_config_reloads_total",
                                        "Configuration reloads, by result", {"result"});
    metrics_.gauge_callback("strata_config_restart_pending",
                            "Changed keys that take effect only after a restart",
                            [this] { return static_cast<double>(pending_restart_.size()); });
}

void Runtime::install_builtin_routes() {
    control_router_.get("/healthz", [](http::Request&) {
        return http::Response::json(200, {{"status", "ok"}});
    });
    control_router_.get("/metrics", [this](http::Request&) {
        return http::Response::text(200, metrics_.render(), std::string(metrics::kContentType));
    });
    control_router_.get("/v1/status", [this](http::Request&) {
        nlohmann::json j = {
            {"name", spec_.name},
            {"version", STRATA_VERSION},
            {"pid", getpid()},
            {"uptime_seconds",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()},
            {"started_at", iso8601(started_wall_)},
            {"config_digest", config_.digest()},
            {"config_files", config_.files()},
            {"pending_restart", pending_restart_},
        };
        if (state_) j["state_dir"] = state_->path();
        return http::Response::json(200, j);
    });
    control_router_.post("/v1/reload", [this](http::Request& req) {
        // Requests through the gateway carry X-Strata-Caller: never an operator's.
        if (req.header("X-Strata-Caller"))
            return http::Response::error(403, "forbidden", "operators only (stratactl reload)");
        if (auto error = reload()) return http::Response::error(422, "config_rejected", *error);
        return http::Response::json(200, {{"reloaded", true}, {"config_digest", config_.digest()}});
    });
}

void Runtime::apply_reloadable(const config::Config& next) {
    if (auto level = log::parse_level(next.string("log.level"))) log::set_level(*level);
    for (auto& server : servers_)
        server->set_max_body_bytes(static_cast<std::size_t>(next.integer("http.max_body_bytes")));
}

std::optional<std::string> Runtime::reload() {
    notify::reloading();
    auto schema = full_schema(spec_);
    std::optional<config::Config> next;
    try {
        next = config::load(schema, config_path_);
        if (spec_.check) spec_.check(*next);
        if (spec_.reload) spec_.reload(*this, *next);
    } catch (const config::Error& e) {
        log_config_error(e);
        log::error("reload rejected; the previous configuration stays in effect");
        reloads_->with({"error"}).inc();
        notify::ready("reload rejected: configuration has errors");
        return e.what();
    } catch (const std::exception& e) {
        log::error("reload rejected: {}; the previous configuration stays in effect", e.what());
        reloads_->with({"error"}).inc();
        notify::ready("reload rejected");
        return e.what();
    }
    pending_restart_.clear();
    for (const auto& key : next->changed_keys(boot_config_)) {
        const auto* k = schema.find(key);
        if (k && !k->reloadable) {
            pending_restart_.push_back(key);
            log::warning("{} changed: takes effect after a restart", key);
        }
    }
    apply_reloadable(*next);
    config_ = std::move(*next);
    reloads_->with({"ok"}).inc();
    log::notice("configuration reloaded ({})", config_.digest());
    notify::ready("serving");
    return std::nullopt;
}

void Runtime::request_stop() {
    if (stopping_) return;
    stopping_ = true;
    notify::stopping();
    log::notice("stopping");
    for (auto& server : servers_)
        server->stop();
    if (spec_.stopping) spec_.stopping(*this);
    uv_signal_stop(&sighup_);
    close_handle(reinterpret_cast<uv_handle_t*>(&sighup_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sigterm_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sigint_));
    close_handle(reinterpret_cast<uv_handle_t*>(&watchdog_));
    // The promise is "stopped within 5 s": if something still holds the loop, give up on
    // a graceful end rather than let systemd's stop timeout SIGKILL us without a word.
    uv_timer_init(&loop_, &stop_deadline_);
    uv_timer_start(
        &stop_deadline_,
        [](uv_timer_t*) {
            log::error("did not stop within {} ms; exiting anyway", kStopDeadlineMs);
            std::_Exit(1);
        },
        kStopDeadlineMs, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&stop_deadline_));
}

void Runtime::start() {
    boot_config_ = config_;
    open_state();
    install_metrics();
    install_builtin_routes();
    if (spec_.start) spec_.start(*this);
    take_sockets();
    drop_privileges();

    on_signal(&loop_, &sighup_, SIGHUP, this,
              [](uv_signal_t* h, int) { static_cast<Runtime*>(h->data)->reload(); });
    auto stop = [](uv_signal_t* h, int) { static_cast<Runtime*>(h->data)->request_stop(); };
    on_signal(&loop_, &sigterm_, SIGTERM, this, stop);
    on_signal(&loop_, &sigint_, SIGINT, this, stop);

    if (auto ms = notify::watchdog_interval_ms()) {
        uv_timer_init(&loop_, &watchdog_);
        uv_timer_start(
            &watchdog_, [](uv_timer_t*) { notify::watchdog(); }, 0, ms);
    }
    notify::ready("serving");
    log::notice("started, version {}, config {}", STRATA_VERSION, config_.digest());
}

int Runtime::run() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    return exit_code_;
}

int main(int argc, char** argv, const Spec& spec) {
    std::string program = "strata-" + spec.name;
    std::string default_config = std::string(STRATA_SYSCONFDIR) + "/" + spec.name + ".conf";
    log::set_identity(program);
    auto opts = parse_options(argc, argv, default_config);
    if (!opts) return 2;
    if (opts->help) {
        fmt::print("{}", usage(program, spec.summary, default_config));
        return 0;
    }
    if (opts->version) {
        fmt::print("{} {}\n", program, STRATA_VERSION);
        return 0;
    }
    std::optional<config::Config> config;
    try {
        config = config::load(full_schema(spec), opts->config_path);
    } catch (const config::Error& e) {
        if (opts->check_config) {
            for (const auto& p : e.problems())
                fmt::print(stderr, "{}\n", p.to_string());
        } else {
            log_config_error(e);
            log::error("not starting: the configuration has errors");
        }
        return 1;
    }
    if (spec.check) {
        try {
            spec.check(*config);
        } catch (const std::exception& e) {
            if (opts->check_config)
                fmt::print(stderr, "{}: {}\n", opts->config_path, e.what());
            else
                log::error("not starting: {}: {}", opts->config_path, e.what());
            return 1;
        }
    }
    if (opts->check_config) {
        for (const auto& f : config->files())
            fmt::print("{}: ok\n", f);
        return 0;
    }
    if (auto level = log::parse_level(config->string("log.level"))) log::set_level(*level);

    Runtime runtime(spec, opts->config_path, std::move(*config));
    try {
        runtime.start();
    } catch (const std::exception& e) {
        log::error("cannot start: {}", e.what());
        notify::status(std::string("cannot start: ") + e.what());
        return 1;
    }
    return runtime.run();
}

} // namespace strata::daemon

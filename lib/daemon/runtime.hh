// The life of a Strata daemon: config -> state -> sockets -> privileges -> READY, then a libuv
// loop that serves the control socket and handles HUP (reload) and TERM/INT (stop).
// Daemon mains describe themselves with a Spec and call daemon::main().
#pragma once

#include "config/config.hh"
#include "daemon/identity.hh"
#include "daemon/state_dir.hh"
#include "http/server.hh"
#include "metrics/metrics.hh"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <uv.h>
#include <vector>

namespace strata::daemon {

class Runtime;

struct Spec {
    std::string name;    // "metad": binary strata-metad, config NAME.conf, socket NAME.sock
    std::string summary; // one line for --help
    // Default state directory; daemons without state leave it empty (no daemon.state_dir key).
    std::string state_dir;
    // Daemon-specific keys, added to the common ones.
    std::function<void(config::Schema&)> extend_schema;
    // Rules across keys that the schema cannot state (a route naming a pool that no key
    // defines): throws std::exception saying what is wrong. Run by --check-config, before
    // start and on reload, so all three refuse the same files.
    std::function<void(const config::Config&)> check;
    // Called once the state is open and before sockets are taken: add routes, listeners.
    std::function<void(Runtime&)> start;
    // Called with a validated new config on reload, before it becomes current. Throwing
    // std::exception rejects the reload (the message is logged and returned to the caller).
    std::function<void(Runtime&, const config::Config&)> reload;
    // Called on the loop when a stop begins (SIGTERM, SIGINT), after the servers stopped
    // accepting: end what would keep the loop running (timers, child processes).
    std::function<void(Runtime&)> stopping;
    // Called once the loop has stopped, before the servers go and libuv closes what is left:
    // release what lives on the loop (e.g. an http_client::AsyncClient).
    std::function<void(Runtime&)> stop;
    // http::Limits::body_buffer_bytes of the daemon's general-engine listeners.
    std::size_t http_body_buffer_bytes = http::Limits{}.body_buffer_bytes;
};

// Keys every daemon has (daemon.*, log.*, http.*), plus daemon.state_dir when given.
config::Schema common_schema(const std::string& state_dir);
config::Schema full_schema(const Spec& spec);

// Runs the daemon; returns the process exit code.
int main(int argc, char** argv, const Spec& spec);

class Runtime {
public:
    Runtime(const Spec& spec, std::string config_path, config::Config config);
    ~Runtime();

    uv_loop_t* loop() { return &loop_; }
    const config::Config& config() const { return config_; }
    metrics::Registry& metrics() { return metrics_; }
    http::Router& control_router() { return control_router_; }
    const Spec& spec() const { return spec_; }
    const StateDir* state_dir() const { return state_.get(); }

    // Which HTTP engine serves a listener: the general one (libmicrohttpd: every route
    // kind, streamed uploads) or the content one (http::ContentServer: GET/HEAD-heavy
    // traffic with small request bodies, sendfile of several files per response).
    enum class Engine { general, content };

    // An extra HTTP listener (e.g. gatewayd's public side): fds systemd passed under
    // `fd_name`, else the daemon binds `addresses` ("host:port"). With `tls_priorities`
    // (general engine only) it serves HTTPS, presenting http::tls_certificate().
    void add_listener(std::string fd_name, std::vector<std::string> addresses,
                      const http::Router& router, Engine engine = Engine::general,
                      std::optional<std::string> tls_priorities = std::nullopt);

    // Also told of every exchange on the add_listener() listeners (not the control socket),
    // after the runtime's metrics: e.g. gatewayd logs the requests refused before a route.
    void observe_listeners(http::RequestObserver observer) {
        listener_observer_ = std::move(observer);
    }

    // Reload from the same config path. Returns an error message, or nullopt on success.
    std::optional<std::string> reload();
    void request_stop();

    // Sets up everything up to READY=1; throws with a message fit for the log on failure.
    void start();
    // Runs the loop until stopped; returns the exit code.
    int run();

private:
    http::RequestObserver listener_observer_;
    struct Listener {
        std::string fd_name;
        std::vector<std::string> addresses;
        const http::Router* router;
        Engine engine;
        std::optional<std::string> tls_priorities;
    };

    void open_state();
    void take_sockets();
    void drop_privileges();
    void install_builtin_routes();
    void install_metrics();
    void apply_reloadable(const config::Config& next);
    http::Limits limits() const;
    std::optional<Identity> target_identity() const;

    const Spec& spec_;
    std::string config_path_;
    config::Config config_;
    config::Config boot_config_; // the config the daemon started with (restart-only keys)
    std::vector<std::string> pending_restart_;
    std::vector<std::string> bound_paths_; // socket files we created, removed on exit
    uv_loop_t loop_{};
    uv_signal_t sighup_{}, sigterm_{}, sigint_{};
    uv_timer_t watchdog_{};
    uv_timer_t stop_deadline_{};
    bool stopping_ = false;
    int exit_code_ = 0;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();
    std::unique_ptr<StateDir> state_;
    metrics::Registry metrics_;
    http::Router control_router_;
    std::vector<Listener> listeners_;
    std::vector<std::unique_ptr<http::ServerBase>> servers_;
    metrics::Family<metrics::Counter>* requests_ = nullptr;
    metrics::Family<metrics::Histogram>* request_seconds_ = nullptr;
    metrics::Family<metrics::Counter>* response_bytes_ = nullptr;
    metrics::Family<metrics::Counter>* request_bytes_ = nullptr;
    metrics::Family<metrics::Counter>* reloads_ = nullptr;
};

} // namespace strata::daemon

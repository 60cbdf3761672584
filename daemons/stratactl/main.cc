// stratactl: the operator's CLI, a thin client of every daemon's control socket.
#include "commands.hh"
#include "strata_build_config.h"

#include <cstdlib>
#include <fmt/format.h>
#include <getopt.h>
#include <string>

namespace {

const char* kUsage = R"(Usage: stratactl [OPTIONS] COMMAND [ARGS]
Talks to the Strata daemons over their control sockets.

Commands:
  status              every daemon: state, version, uptime, pid (exit 3 if one is not up)
  reload NAME         reload NAME's configuration (a bad one is rejected and reported)
  metrics NAME        print NAME's metrics in Prometheus text format
  blocks stats        blockd's store: blocks, bytes, files, dedupe ratio
  meta stats          metad's users, sessions, nodes and map size
  meta user list      metad's users
  meta user add NAME EMAIL
                      a new user; the password is read from standard input
  meta user disable|enable NAME
                      a disabled user cannot log in and its sessions stop working
  meta backup FILE    a consistent copy of metad's database, taken while it serves
  meta restore FILE [STATE_DIR]
                      put a backup in place (metad stopped; default /var/lib/strata/meta)
  transcode queue     strata-transcoded's jobs per priority: ready, delayed, running, failed
  transcode jobs [ID] the failed jobs with their reasons, or one job
  transcode cancel ID remove a job that is not running
  transcode retry ID  run a failed job again (its attempts start over)
  auth public-key KEY_FILE
                      the public key of metad's session key file, for gatewayd's
                      auth.session_public_keys_file (offline: reads only KEY_FILE)

NAME is one of: dnsd lbd gatewayd metad blockd transcoded notifyd

Options:
  -r, --runtime-dir DIR   where the sockets are (default $STRATA_RUNTIME_DIR or /run/strata)
  -t, --timeout SECONDS   per-request timeout (default 5)
  -j, --json              machine-readable output (status)
  -h, --help              show this help
  -V, --version           show the version
)";

int usage_error(const std::string& message) {
    fmt::print(stderr, "stratactl: {}\n(see stratactl --help)\n", message);
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    using namespace strata::ctl;
    const char* env_dir = std::getenv("STRATA_RUNTIME_DIR");
    Context ctx{env_dir && *env_dir ? env_dir : "/run/strata", std::chrono::milliseconds(5000)};
    static const option longopts[] = {
        {"runtime-dir", required_argument, nullptr, 'r'},
        {"timeout", required_argument, nullptr, 't'},
        {"json", no_argument, nullptr, 'j'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    opterr = 0;
    int c;
    // "+": stop at the command, so "stratactl reload metad" never parses NAME as an option.
    while ((c = getopt_long(argc, argv, "+:r:t:jhV", longopts, nullptr)) != -1) {
        switch (c) {
        case 'r':
            ctx.runtime_dir = optarg;
            break;
        case 't': {
            char* end = nullptr;
            double s = std::strtod(optarg, &end);
            if (!end || *end || s <= 0 || s > 3600)
                return usage_error(fmt::format("bad --timeout '{}'", optarg));
            ctx.timeout = std::chrono::milliseconds(static_cast<long>(s * 1000));
            break;
        }
        case 'j':
            ctx.json = true;
            break;
        case 'h':
            fmt::print("{}", kUsage);
            return 0;
        case 'V':
            fmt::print("stratactl {}\n", STRATA_VERSION);
            return 0;
        case ':':
            return usage_error(fmt::format("option '{}' needs an argument", argv[optind - 1]));
        default:
            return usage_error(fmt::format("unknown option '{}'", argv[optind - 1]));
        }
    }
    if (optind >= argc) return usage_error("no command given");
    std::string command = argv[optind++];
    int rest = argc - optind;
    if (command == "status") {
        if (rest != 0) return usage_error("status takes no arguments");
        return cmd_status(ctx);
    }
    if (command == "blocks") {
        if (rest != 1 || std::string(argv[optind]) != "stats")
            return usage_error("usage: stratactl blocks stats");
        return cmd_blocks_stats(ctx);
    }
    if (command == "auth") {
        if (rest != 2 || std::string(argv[optind]) != "public-key")
            return usage_error("usage: stratactl auth public-key KEY_FILE");
        return cmd_auth_public_key(argv[optind + 1]);
    }
    if (command == "meta") {
        std::string sub = rest > 0 ? argv[optind] : "";
        if (sub == "stats" && rest == 1) return cmd_meta_stats(ctx);
        if (sub == "user" && rest >= 2) {
            std::vector<std::string> args(argv + optind + 1, argv + argc);
            const std::string& verb = args[0];
            if ((verb == "list" && args.size() == 1) || (verb == "add" && args.size() == 3) ||
                ((verb == "disable" || verb == "enable") && args.size() == 2))
                return cmd_meta_user(ctx, args);
        }
        if (sub == "backup" && rest == 2) return cmd_meta_backup(ctx, argv[optind + 1]);
        if (sub == "restore" && (rest == 2 || rest == 3))
            return cmd_meta_restore(ctx, argv[optind + 1],
                                    rest == 3 ? argv[optind + 2] : "/var/lib/strata/meta");
        return usage_error("usage: stratactl meta stats | user list | user add NAME EMAIL | "
                           "user disable|enable NAME | backup FILE | restore FILE [STATE_DIR]");
    }
    if (command == "transcode") {
        std::vector<std::string> args(argv + optind, argv + argc);
        if ((rest == 1 && (args[0] == "queue" || args[0] == "jobs")) ||
            (rest == 2 && (args[0] == "jobs" || args[0] == "cancel" || args[0] == "retry")))
            return cmd_transcode(ctx, args);
        return usage_error("usage: stratactl transcode queue | jobs [ID] | cancel ID | retry ID");
    }
    if (command == "reload" || command == "metrics") {
        if (rest != 1) return usage_error(command + " needs exactly one daemon NAME");
        std::string name = argv[optind];
        if (name.rfind("strata-", 0) == 0) name = name.substr(7);
        if (!is_daemon_name(name)) return usage_error(fmt::format("unknown daemon '{}'", name));
        return command == "reload" ? cmd_reload(ctx, name) : cmd_metrics(ctx, name);
    }
    return usage_error(fmt::format("unknown command '{}'", command));
}

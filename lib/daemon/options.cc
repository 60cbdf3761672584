#include "daemon/options.hh"

#include <fmt/format.h>
#include <getopt.h>

namespace strata::daemon {

std::optional<Options> parse_options(int argc, char** argv, const std::string& default_config) {
    static const option longopts[] = {
        {"config", required_argument, nullptr, 'c'},
        {"check-config", no_argument, nullptr, 'C'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    Options opts;
    opts.config_path = default_config;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:hV", longopts, nullptr)) != -1) {
        switch (c) {
        case 'c':
            opts.config_path = optarg;
            break;
        case 'C':
            opts.check_config = true;
            break;
        case 'h':
            opts.help = true;
            break;
        case 'V':
            opts.version = true;
            break;
        case ':':
            fmt::print(stderr, "{}: option '{}' needs an argument\n", argv[0], argv[optind - 1]);
            return std::nullopt;
        default:
            fmt::print(stderr, "{}: unknown option '{}' (see --help)\n", argv[0], argv[optind - 1]);
            return std::nullopt;
        }
    }
    if (optind < argc) {
        fmt::print(stderr, "{}: unexpected argument '{}' (see --help)\n", argv[0], argv[optind]);
        return std::nullopt;
    }
    return opts;
}

std::string usage(const std::string& program, const std::string& summary,
                  const std::string& default_config) {
    return fmt::format("Usage: {0} [OPTIONS]\n"
                       "{1}\n\n"
                       "Options:\n"
                       "  -c, --config FILE   configuration file (default {2});\n"
                       "                      FILE.d/*.conf is read after it, in lexical order\n"
                       "      --check-config  validate the configuration and exit\n"
                       "  -h, --help          show this help and exit\n"
                       "  -V, --version       show the version and exit\n\n"
                       "Signals: HUP reloads the configuration, TERM and INT stop.\n"
                       "See {0}(8) and the configuration reference in its .conf(5) page.\n",
                       program, summary, default_config);
}

} // namespace strata::daemon

// The command line every Strata daemon shares.
#pragma once

#include <optional>
#include <string>

namespace strata::daemon {

struct Options {
    std::string config_path;
    bool check_config = false;
    bool help = false;
    bool version = false;
};

// Returns nullopt after printing a message for a usage error.
std::optional<Options> parse_options(int argc, char** argv, const std::string& default_config);

std::string usage(const std::string& program, const std::string& summary,
                  const std::string& default_config);

} // namespace strata::daemon
